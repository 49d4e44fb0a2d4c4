rule train:
    """One backbone x method x task x seed. Resumes from its checkpoint if one exists."""
    input:
        data=lambda w: data_dir(w.table, w.task),
        backbone=lambda w: backbone_input(w.table),
    output:
        train="results/{scale}/{table}/{method}/{task}/seed{seed}/train.json",
        profile="results/{scale}/{table}/{method}/{task}/seed{seed}/profile.json",
    params:
        cfg=lambda w: TABLES[w.table]["_path"],
        checkpoint="checkpoints/{scale}/{table}/{method}/{task}/seed{seed}.pt",
        outdir=lambda w, output: str(Path(output.train).parent),
    threads: lambda w: TABLES_RES(w, "train", "cpus_per_task", 1)
    resources:
        **config_resources("train", mem_mb=4000, runtime=60, gpu=True),
    log:
        "logs/{scale}/train/{table}/{method}/{task}/seed{seed}.log",
    shell:
        "{PY} -m harness train --config {params.cfg} --scale {wildcards.scale} --method {wildcards.method} "
        "--task {wildcards.task} --seed {wildcards.seed} --data {input.data} --out {params.outdir} "
        "--checkpoint {params.checkpoint} --threads {threads} 2> {log}"
