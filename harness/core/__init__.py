"""The leaf layer: what every other part of the harness uses and that imports nothing else of it.

  atomic      atomic writes: files, folders, JSON, text and the one CSV writer; read_json
  errors      DataError, ArtifactError (an unreadable result file) and the one-line error quote
  splits      seeded, stratified splits (validation hold-out, regression strata)
  metrics     task metrics on the papers' 0-100 scale and the no-training baseline
  provenance  commit and package versions, recorded with every number
  sources     where data comes from: hub datasets offline or online, files packages ship
"""
