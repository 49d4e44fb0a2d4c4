def data_dir(table, task):
    return f"data/{SCALE}/{prep_id(TABLES[table], task)}/{task}"


rule prep:
    """Load a task (hub or local data_dir) and tokenize it once for every job that shares it."""
    output:
        directory("data/{scale}/{dataset}/{task}"),
    params:
        cfg=lambda w: PREP[(w.dataset, w.task)],
    resources:
        mem_mb=lambda w: TABLES_RES(w, "prep", "mem_mb", 4000),
        runtime=lambda w: TABLES_RES(w, "prep", "runtime", 60),
        cpus_per_task=lambda w: TABLES_RES(w, "prep", "cpus_per_task", 1),
    log:
        "logs/{scale}/prep/{dataset}/{task}.log",
    shell:
        "{PY} -m harness prep --config {params.cfg} --scale {wildcards.scale} --task {wildcards.task} "
        "--out {output} 2> {log}"


def TABLES_RES(w, rule_name, key, default):
    """A rule's resource from the table config's `resources:` block (what SLURM jobs ask for)."""
    if hasattr(w, "table"):
        cfg = TABLES[w.table]
    else:
        cfg = next(TABLES[t] for t in TABLES if prep_id(TABLES[t], w.task) == w.dataset)
    return (cfg.get("resources", {}).get(rule_name) or {}).get(key, default)
