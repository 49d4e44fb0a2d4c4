def data_dir(table, task):
    return f"data/{SCALE}/{prep_id(TABLES[table], task)}/{task}"


def TABLES_RES(w, rule_name, key, default):
    """A rule's resource from the table config's `resources:` block (what SLURM jobs ask for)."""
    cfg = TABLES[w.table] if hasattr(w, "table") else TABLES[PREP_TABLE[(w.dataset, w.task)]]
    return (cfg.get("resources", {}).get(rule_name) or {}).get(key, default)


def config_resources(rule_name, mem_mb, runtime, gpu=False):
    """The resources a job asks for (what SLURM jobs request), read per job from its table
    config's `resources.<rule_name>` block; `gpus` there becomes the executor's `gpu`."""
    defaults = {"mem_mb": mem_mb, "runtime": runtime, "cpus_per_task": 1} | ({"gpus": 0} if gpu else {})
    return {
        ("gpu" if key == "gpus" else key): (lambda w, key=key, d=d: TABLES_RES(w, rule_name, key, d))
        for key, d in defaults.items()
    }


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
    resources:
        **config_resources("prep", mem_mb=4000, runtime=60),
    log:
        "logs/{scale}/prep/{dataset}/{task}.log",
    shell:
        "{PY} -m harness prep --config {params.cfg} --scale {wildcards.scale} --task {wildcards.task} "
        "--out {output} 2> {log}"
