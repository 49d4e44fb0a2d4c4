"""Data: convert a package-shipped backbone once; load and preprocess each task once (prep)."""


rule backbone:
    """Convert a model a package ships (ONNX, GGUF) once into a save_pretrained folder."""
    output:
        directory("backbones/{backbone}"),
    params:
        converter=lambda w: CONVERTERS[w.backbone],
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        "logs/backbone/{backbone}.log",
    shell:
        "{PY} -m harness backbone --converter {params.converter} --out {output} 2> {log}"


rule prep:
    """Load a task (hub, local data_dir or a package's files) and preprocess it once for every job that shares it."""
    input:
        lambda w: backbone_input(PREP_TABLE[(w.dataset, w.task)]),
    output:
        directory("data/{scale}/{dataset}/{task}"),
    params:
        cfg=lambda w: TABLES[PREP_TABLE[(w.dataset, w.task)]]["_path"],
        identity=prep_identity,  # not in the command: a changed data source or tokenizer reruns it
    resources:
        **config_resources("prep", mem_mb=4000, runtime=60),
    log:
        "logs/{scale}/prep/{dataset}/{task}.log",
    shell:
        "{PY} -m harness prep --config {params.cfg} --scale {wildcards.scale} --task {wildcards.task} "
        "--out {output} 2> {log}"
