@functools.cache
def run_owners():
    """(table, variant, task, seed) -> (table, variant) whose results directory holds that run.
    Runs with equal `harness.config.run_key` are trained once, by the first in table-name order,
    and every table that lists them reads that one (FoRA Fig. 1 and Fig. 3 share their LoRA runs)."""
    first, owners = {}, {}
    for name in sorted(TABLES):
        cfg = TABLES[name]
        for v in cfg["methods"]:
            tuned = tune_of(name, v) is not None
            for t in cfg["tasks"]:
                for s in cfg["seeds"]:
                    owners[(name, v, t, s)] = first.setdefault(run_key(cfg, v, t, s, tuned), (name, v))
    return owners


def run_file(table, variant, task, seed, name):
    owner, owner_variant = run_owners()[(table, variant, task, seed)]
    return f"results/{SCALE}/{owner}/{owner_variant}/{task}/seed{seed}/{name}"


def table_runs(table, name):
    """(variant of this table, file of its run) for every run of a table."""
    cfg = TABLES[table]
    return [(m, run_file(table, m, t, s, name)) for m in cfg["methods"] for t in cfg["tasks"] for s in cfg["seeds"]]


def table_jobs(table, name):
    return sorted({path for _, path in table_runs(table, name)})


def labelled_runs(table, name):
    """`variant=path` per run: what the table and profile commands read, a shared run under this table's name."""
    return " ".join(f"{v}={path}" for v, path in table_runs(table, name))


rule profile:
    """Wall-clock, step time, peak memory and samples/s of every job of a table."""
    input:
        lambda w: table_jobs(w.table, "profile.json"),
    output:
        "tables/efficiency_{table}.csv",
    params:
        cfg=lambda w: TABLES[w.table]["_path"],
        runs=lambda w: labelled_runs(w.table, "profile.json"),
    shell:
        "{PY} -m harness profile --config {params.cfg} --scale {SCALE} --out {output} {params.runs}"


rule calibrate:
    """A few real optimizer steps and an eval pass of one method x task, timed on this machine."""
    input:
        data=lambda w: data_dir(w.table, w.task),
        backbone=lambda w: backbone_input(w.table),
    output:
        "calibration/{scale}/{table}/{method}/{task}.json",
    params:
        cfg=lambda w: TABLES[w.table]["_path"],
    threads: lambda w: TABLES_RES(w, "train", "cpus_per_task", 1)
    resources:
        **config_resources("train", mem_mb=4000, runtime=60, gpu=True),
    log:
        "logs/{scale}/calibrate/{table}/{method}/{task}.log",
    shell:
        "FPB_JOB_GPUS={resources.gpu} {PY} -m harness jobserver calibrate --config {params.cfg} --scale {wildcards.scale} --method {wildcards.method} "
        "--task {wildcards.task} --data {input.data} --out {output} --threads {threads} 2> {log}"


rule estimate:
    """The bill of a table before it runs: `snakemake estimates/glue_base.txt`."""
    input:
        lambda w: [f"calibration/{SCALE}/{w.table}/{m}/{t}.json" for m in TABLES[w.table]["methods"] for t in TABLES[w.table]["tasks"]],
    output:
        "estimates/{table}.txt",
        "estimates/{table}.json",
    params:
        cfg=lambda w: TABLES[w.table]["_path"],
    shell:
        "{PY} -m harness estimate --config {params.cfg} --scale {SCALE} --out {output[0]} --calibrations {input}"
