# No eval rule: each train job scores its best epoch itself, in the same process, and writes
# eval.json as one of its outputs (harness.train.train -> harness.evaluate.evaluate_job), so a run
# starts no Python process per job for scoring. `python -m harness eval --train-json ... --out ...`
# rescores a job's saved predictions by hand.
