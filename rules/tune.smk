"""Tuning as a stage (harness/tune.py; helpers and the switches in rules/common.smk): prep-tune
carves train'/validation' out of the prepared TRAIN split, tune searches one method x task on it."""


rule prep_tune:
    """Carve validation' out of the prepared TRAIN split (stratified, seeded); the reported split is never used."""
    input:
        "data/{scale}/{dataset}/{task}",
    output:
        directory("data/{scale}/{dataset}/{task}.tune"),
    params:
        fraction=lambda w: TUNE_CARVES.get((w.dataset, w.task), (0.1, 0))[0],
        seed=lambda w: TUNE_CARVES.get((w.dataset, w.task), (0.1, 0))[1],
    resources:
        **config_resources("prep", mem_mb=4000, runtime=60),
    log:
        "logs/{scale}/prep_tune/{dataset}/{task}.log",
    shell:
        "{PY} -m harness prep-tune --data {input} --out {output} --fraction {params.fraction} --seed {params.seed} 2> {log}"


rule tune:
    """Random search of one method x task: `trials` short real training runs on train', scored on validation'."""
    input:
        data=lambda w: tune_data_dir(w.table, w.task),
        backbone=lambda w: backbone_input(w.table),
    output:
        "tuning/{scale}/{table}/{method}/{task}.json",
    params:
        cfg=lambda w: TABLES[w.table]["_path"],
        storage="tuning/{scale}/{table}/{method}/{task}.db",  # not an output: it survives a failed job, for resuming
        trials=_tune_trials,
        search=_tune_key,  # not in the command: a changed search reruns the job (a changed budget reuses finished trials)
    threads: lambda w: TABLES_RES(w, "train", "cpus_per_task", 1)
    resources:
        mem_mb=lambda w: TABLES_RES(w, "train", "mem_mb", 4000),
        runtime=lambda w: TABLES_RES(w, "train", "runtime", 60) * _tune_trials(w),
        cpus_per_task=lambda w: TABLES_RES(w, "train", "cpus_per_task", 1),
        gpu=lambda w: TABLES_RES(w, "train", "gpus", 0),
    log:
        "logs/{scale}/tune/{table}/{method}/{task}.log",
    shell:
        "FPB_JOB_GPUS={resources.gpu} {PY} -m harness tune --config {params.cfg} --scale {wildcards.scale} --method {wildcards.method} "
        "--task {wildcards.task} --data {input.data} --out {output} --storage {params.storage} "
        "--trials {params.trials} --threads {threads} 2> {log}"
