"""Tuning as a stage (harness/tune.py): prep-tune carves train'/validation' out of the prepared
TRAIN split; tune runs a seeded random search (Optuna) of one method x task on it; the train rule
takes the result (`tuned_input`) and passes it to `python -m harness train --tuned`.

Off unless a table says `tuning: {enabled: true}` or the command line says `--config tune=on`
(`tune=off` forces it off; `tune_trials=N` overrides every budget). Which methods are tuned:
those with a `tune:` block, or every method in fair mode (`tuning.fair: true`, one budget).
Include after rules/data.smk (it uses data_dir, TABLES_RES).
"""
from harness.config import ConfigError, tune_spec, tune_switch, tuning_settings, validate_tuning

try:
    TUNE_SWITCH = tune_switch(config.get("tune"))
    TUNE_TRIALS = int(config["tune_trials"]) if config.get("tune_trials") not in (None, "") else None
    for _cfg in TABLES.values():
        validate_tuning(_cfg, _cfg["_path"])
except (ConfigError, ValueError) as e:
    raise WorkflowError(f"config error: {e}") from None


def tune_of(table, method):
    """The tuning spec of a method of a table in this run (None: it runs its configured values)."""
    return tune_spec(TABLES[table], method, TUNE_SWITCH, TUNE_TRIALS)


def tuned_input(wildcards):
    """The tuning record a train job waits for and passes as `--tuned`, or nothing."""
    if tune_of(wildcards.table, wildcards.method) is None:
        return []
    return [f"tuning/{wildcards.scale}/{wildcards.table}/{wildcards.method}/{wildcards.task}.json"]


def tune_data_dir(table, task):
    return data_dir(table, task) + ".tune"


def _carves():
    """(prep id, task) -> (fraction, seed) of the carved split; tables sharing prepared data must agree."""
    out = {}
    for name, cfg in TABLES.items():
        t = tuning_settings(cfg, TUNE_SWITCH, TUNE_TRIALS)
        if not any(tune_of(name, m) for m in cfg["methods"]):
            continue
        for task in cfg["tasks"]:
            key, carve = (prep_id(cfg, task), task), (t["fraction"], t["seed"])
            if out.setdefault(key, (carve, name))[0] != carve:
                raise WorkflowError(f"config error: tables {out[key][1]} and {name} share the prepared {task} data but carve "
                                    f"different tuning splits {out[key][0]} vs {carve} (tuning.fraction, tuning.seed)")
    return {k: v[0] for k, v in out.items()}


TUNE_CARVES = _carves()


def _tune_forced(w):
    spec = tune_spec(TABLES[w.table], w.method, True, TUNE_TRIALS)
    if spec is None:
        raise WorkflowError(f"{w.table}: method {w.method} has no tune block and tuning.fair is off: nothing to tune")
    return spec


def _tune_trials(w):
    return _tune_forced(w)["trials"]


def _tune_key(w):
    """A digest of the search (space, seed, fraction, epoch cap; not the budget): a changed space reruns the job."""
    import hashlib, json

    spec = {k: v for k, v in _tune_forced(w).items() if k != "trials"}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:12]


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
        "{PY} -m harness tune --config {params.cfg} --scale {wildcards.scale} --method {wildcards.method} "
        "--task {wildcards.task} --data {input.data} --out {output} --storage {params.storage} "
        "--trials {params.trials} --threads {threads} 2> {log}"
