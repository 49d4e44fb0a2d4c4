rule train:
    """One backbone x method x task x seed: trains, scores its best epoch (eval.json, in the same
    process: no eval job per run) and deletes its checkpoint once every output is written. Resumes
    from its checkpoint if one exists. A job that asks for GPUs takes its own on a shared machine
    (FPB_JOB_GPUS; harness.train.claim_gpus, docs/gpu.md). `harness.jobserver` runs
    `python -m harness train ...` forked from a warm process that has imported torch & co. once
    (outside SLURM; FPB_JOB_SERVER=0 turns it off)."""
    input:
        data=lambda w: data_dir(w.table, w.task),
        backbone=lambda w: backbone_input(w.table),
        tuned=tuned_input,  # the tuning stage's record when this method x task is tuned (rules/tune.smk), else nothing
    output:
        train="results/{scale}/{table}/{method}/{task}/seed{seed}/train.json",
        profile="results/{scale}/{table}/{method}/{task}/seed{seed}/profile.json",
        eval="results/{scale}/{table}/{method}/{task}/seed{seed}/eval.json",
        adapter="results/{scale}/{table}/{method}/{task}/seed{seed}/adapter.safetensors",
        predictions="results/{scale}/{table}/{method}/{task}/seed{seed}/predictions.npz",
    params:
        cfg=lambda w: TABLES[w.table]["_path"],
        checkpoint="checkpoints/{scale}/{table}/{method}/{task}/seed{seed}.pt",
        outdir=lambda w, output: str(Path(output.train).parent),
        identity=run_identity,  # not in the command: a changed setting of this run reruns it (rules/common.smk)
    threads: lambda w: TABLES_RES(w, "train", "cpus_per_task", 1)
    resources:
        **config_resources("train", mem_mb=4000, runtime=60, gpu=True),
    log:
        "logs/{scale}/train/{table}/{method}/{task}/seed{seed}.log",
    shell:
        "FPB_JOB_GPUS={resources.gpu} {PY} -m harness jobserver train --config {params.cfg} --scale {wildcards.scale} "
        "--method {wildcards.method} --task {wildcards.task} --seed {wildcards.seed} --data {input.data} "
        "--out {params.outdir} --checkpoint {params.checkpoint} --threads {threads} --tuned {input.tuned} 2> {log}"
