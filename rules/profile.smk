"""Profiles and estimates: collect job profiles into efficiency tables; time real steps; estimate a table."""


rule profile:
    """Wall-clock, step time, peak memory and samples/s of every job of a table."""
    input:
        lambda w: table_jobs(w.table, "profile.json"),
    output:
        "tables/efficiency_{table}.csv",
    params:
        cfg=lambda w: TABLES[w.table]["_path"],
        runs=lambda w: labelled_runs(w.table, "profile.json"),
        identity=table_identity,  # not in the command: a changed table config redraws it (rules/common.smk)
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
