def data_dir(table, task):
    return f"data/{SCALE}/{prep_id(TABLES[table], task)}/{task}"


def TABLES_RES(w, rule_name, key, default):
    """A rule's resource from the table config's `resources:` block (what SLURM jobs ask for)."""
    if hasattr(w, "table"):
        cfg = TABLES[w.table]
    else:
        cfg = next(TABLES[t] for t in TABLES if prep_id(TABLES[t], w.task) == w.dataset)
    return (cfg.get("resources", {}).get(rule_name) or {}).get(key, default)


def config_resources(rule_name, mem_mb, runtime, gpu=False):
    """The resources a job asks for (what SLURM jobs request), read per job from its table
    config's `resources.<rule_name>` block; `gpus` there becomes the executor's `gpu`."""
    defaults = {"mem_mb": mem_mb, "runtime": runtime, "cpus_per_task": 1} | ({"gpus": 0} if gpu else {})
    return {
        ("gpu" if key == "gpus" else key): (lambda w, key=key, d=d: TABLES_RES(w, rule_name, key, d))
        for key, d in defaults.items()
    }


rule prep:
    """Load a task (hub or local data_dir) and tokenize it once for every job that shares it."""
    output:
        directory("data/{scale}/{dataset}/{task}"),
    params:
        cfg=lambda w: PREP[(w.dataset, w.task)],
    resources:
        **config_resources("prep", mem_mb=4000, runtime=60),
    log:
        "logs/{scale}/prep/{dataset}/{task}.log",
    shell:
        "{PY} -m harness prep --config {params.cfg} --scale {wildcards.scale} --task {wildcards.task} "
        "--out {output} 2> {log}"
