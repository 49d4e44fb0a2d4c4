"""Every helper of the workflow, included first by the Snakefile (the Snakemake workflow catalog's
convention): the validated table configs, where each stage's files live, resources, tuning,
which table owns a shared run, and which figures exist. The rule files (one per stage) hold rules only."""
import functools
import hashlib
import json
import os
import re
import sys
from pathlib import Path

import yaml

from harness.config import ConfigError, load_table, run_key, table_configs, tune_spec, tune_switch, tuning_settings, validate_tuning
from harness.preflight import preflight
from harness.suites import get_suite
from harness.tracking import tracking_mode

SCALE = config.get("scale", "paper")
PY = sys.executable
CONFIG_DIR = config.get("config_dir", workflow.basedir + "/config")
try:
    TABLES = {name: load_table(path, SCALE) for name, path in table_configs(CONFIG_DIR).items()}
except ConfigError as e:
    raise WorkflowError(f"config error: {e}") from None


def prep_id(cfg, task):
    """Jobs share one prepared dataset only when everything that decides its bytes is equal: data
    source, tokenizer/processor source and preprocessing (`Suite.prep_identity`)."""
    return get_suite(cfg["suite"]).prep_id(cfg, task)


def backbone_input(table):
    """The converted backbone folder a table's jobs load (backbone.convert), or nothing."""
    bb = TABLES[table]["backbone"]
    return [f"backbones/{bb['name']}"] if bb.get("convert") else []


if SCALE == "mini":  # the mini scale never touches the hub
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if "tracking" in config:  # --config tracking=mlflow|off: every job's records to MLflow or not (harness/tracking.py)
    os.environ["FPB_TRACKING"] = tracking_mode(config["tracking"], "--config tracking")
# jobs import the harness from this checkout whatever the work directory (--directory, SLURM)
os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (workflow.basedir, os.environ.get("PYTHONPATH")) if p)

# (prep id, task) -> the table whose config its prep job runs with: the first in name order; every table
# with that prep id holds the same sources and preprocessing (the id is their digest)
PREP_TABLE = {}
for _name in sorted(TABLES):
    for _task in TABLES[_name]["tasks"]:
        PREP_TABLE.setdefault((prep_id(TABLES[_name], _task), _task), _name)
CONVERTERS = {cfg["backbone"]["name"]: cfg["backbone"]["convert"] for cfg in TABLES.values() if cfg["backbone"].get("convert")}


# ------------------------------------------------------------------ data (rules/data.smk)
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


# ------------------------------------------------------------------ tuning (rules/tune.smk)
# Tuning as a stage (harness/tune.py): prep-tune carves train'/validation' out of the prepared
# TRAIN split; tune runs a seeded random search (Optuna) of one method x task on it; the train rule
# takes the result (`tuned_input`) and passes it to `python -m harness train --tuned`.
#
# Off unless a table says `tuning: {enabled: true}` or the command line says `--config tune=on`
# (`tune=off` forces it off; `tune_trials=N` overrides every budget). Which methods are tuned:
# those with a `tune:` block, or every method in fair mode (`tuning.fair: true`, one budget).
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


# ------------------------------------------------------------------ runs (rules/train.smk, rules/profile.smk, rules/tables.smk)
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


# ------------------------------------------------------------------ rerun triggers (every rule's `params: identity=`)
# Snakemake reruns a job whose params changed since its outputs were made (its default
# `--rerun-triggers` include `params`). Each rule carries, as the param `identity`, a digest of
# exactly what decides its outputs, so a changed setting reruns the jobs it reaches and only
# those, and an edited comment or a renamed table reruns nothing (README "When something fails").
def digest(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_identity(w):
    """A train job: its run's `harness.config.run_key` (resolved settings and hyperparameters, suite,
    backbone, data, train and generation sections); the owner's key is every sharer's key."""
    return digest(run_key(TABLES[w.table], w.method, w.task, int(w.seed), tune_of(w.table, w.method) is not None))


def prep_identity(w):
    """A prep job: the suite's prep id (tokenizer, lengths, sizes) and where data and tokenizer come from."""
    cfg = TABLES[PREP_TABLE[(w.dataset, w.task)]]
    bb = cfg["backbone"]
    return digest({"prep_id": w.dataset, "task": w.task, "scale": w.scale, "data_dir": cfg["data"].get("data_dir"),
                   "backbone": [bb.get("hub_id"), bb.get("local_path"), bb.get("convert")]})


def table_identity(w):
    """A table: its validated config (methods, labels, tasks, seeds, aggregate, paper values file),
    not where the file lies nor what its jobs ask of a cluster (`resources`); its runs are inputs,
    so their reruns reach it anyway."""
    return digest({k: v for k, v in TABLES[w.table].items() if k not in ("_path", "resources")})


# ------------------------------------------------------------------ figures (rules/figures.smk, rules/report.smk)
# the tables whose own figure is an item of docs/figures.md (sweep lines or ablation bars)
FIGURE_TABLES = [t for t in (
    "fora_fig1_glue", "fora_fig1_vit", "fora_fig3_glue", "fora_fig3_vit",
    "lfma_topk_vit_base", "lfma_topk_vit_large", "lfma_topk_glue_base", "lfma_topk_glue_large",
    "faa_ablation", "fourier_moe_fig3", "fourier_moe_fig4_n", "fourier_moe_fig4_z", "fourier_moe_fig4_k",
) if t in TABLES]
MOE_TABLE, MOE_VARIANT = "fourier_moe_fig4_z", "fourier_moe.experts8"   # Z = 8, k = 2: FourierMoEConfig's defaults


# FRAME's learned orders: every FRAME variant of every table at paper scale (002's own setting is the
# instruct MoE tables, e.g. math_moe_llama3_8b; frame_orders is a GLUE stand-in); at mini scale
# frame_orders only (the budget of `figures`).
FRAME_JOBS = sorted({
    run_file(t, v, task, s, "eval.json")
    for t, cfg in TABLES.items() if SCALE == "paper" or t == "frame_orders"
    for v, m in cfg["methods"].items() if m["method"] == "frame"
    for task in cfg["tasks"] for s in cfg["seeds"]
})


def figure_targets():
    out = [f"figures/{t}{k}.png" for t in FIGURE_TABLES for k in ("", "_tradeoff")] + ["figures/fourier_moe_fig1.png"]
    if FRAME_JOBS:
        out.append("figures/frame_orders_learned.png")
    if MOE_TABLE in TABLES and MOE_VARIANT in TABLES[MOE_TABLE]["methods"]:
        out.append("figures/fourier_moe_fig5.png")
    return out


# ------------------------------------------------------------------ before and after the run (the Snakefile's onstart, onerror)
def preflight_or_stop(dag):
    """Paper scale, before any job: the model and data sources of every table a job of this run
    reads (harness/preflight.py: data only for the tasks a prep job loads); one line per problem,
    then the run stops. After the DAG is built, so `snakemake -n` stays fast and offline."""
    if SCALE != "paper":
        return  # the mini scale never touches the hub
    tables, data = set(), {}
    for job in dag.needrun_jobs():
        w = dict(job.wildcards.items())
        if job.rule.name == "prep":
            table = PREP_TABLE[(w["dataset"], w["task"])]
            data.setdefault(table, set()).add(w["task"])
        elif "table" not in w or "task" not in w:
            continue
        tables.add(table if job.rule.name == "prep" else w["table"])
    problems = preflight({t: TABLES[t] for t in tables}, data)
    if problems:
        sys.stderr.write("".join(f"preflight: {p}\n" for p in problems))
        raise WorkflowError(f"preflight: {len(problems)} problem(s) with the models or data of this run (above); "
                            "no job was started. `python -m harness preflight <targets>` checks again")


_JOB_ERROR = re.compile(r"^Error in rule (\S+):\n(?:    .*\n)*?    log: (.+?) \(check log file", re.M)


def last_error_line(log):
    """A job log's one-line cause: the last `error: ...` line the harness wrote, else the last line."""
    try:
        lines = [l.strip() for l in Path(log).read_text(errors="replace").splitlines() if l.strip()]
    except OSError:
        return "(no log file)"
    return ([l for l in lines if l.startswith("error:")] or lines or ["(empty log)"])[-1]


def print_failed_job_errors(snakemake_logs):
    """Each failed job's one-line cause on the console, with or without a profile (Snakemake itself
    says only "check log file(s)" unless --show-failed-logs): read from Snakemake's own log, which
    names every failed job's rule and log file."""
    paths = [snakemake_logs] if isinstance(snakemake_logs, str) else list(snakemake_logs or [])
    found = []
    for path in paths:
        text = Path(path).read_text(errors="replace") if Path(path).is_file() else ""
        for rule, logs in _JOB_ERROR.findall(text):
            found += [f"  {rule} ({log}): {last_error_line(log)}" for log in logs.split(", ")]
    if found:
        sys.stderr.write("Why the jobs failed (the last error line of each job's log):\n"
                         + "".join(f"{line}\n" for line in dict.fromkeys(found)))
