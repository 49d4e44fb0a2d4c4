rule eval:
    """Score the best epoch of a job with the task's metric (scikit-learn / scipy)."""
    input:
        "results/{scale}/{table}/{method}/{task}/seed{seed}/train.json",
    output:
        "results/{scale}/{table}/{method}/{task}/seed{seed}/eval.json",
    shell:
        "{PY} -m harness eval --train-json {input} --out {output}"
