"""fourier-peft-bench: [backbone] -> prep -> [tune] -> train (backbone x method x task x seed; scores itself) -> profile -> tables.

Targets come from the table configs in config/: `snakemake --cores all tables/glue_base.csv`.
`--config scale=mini` (what profiles/mini sets) runs the same DAG at the mini scale on CPU.
Every config is validated (schema, registry, tasks) when this file is parsed, before any job runs.
"""
import functools
import os
import sys
from pathlib import Path

from harness.config import ConfigError, load_table, run_key, table_configs
from harness.tracking import tracking_mode
from harness.suites import get_suite

SCALE = config.get("scale", "paper")
PY = sys.executable
try:
    TABLES = {name: load_table(path, SCALE) for name, path in table_configs(config.get("config_dir", workflow.basedir + "/config")).items()}
except ConfigError as e:
    raise WorkflowError(f"config error: {e}") from None


def prep_id(cfg, task):
    """Jobs that preprocess the same way share one prepared dataset (the suite says what counts:
    task, tokenizer and max length; image size; sizes)."""
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

PREP_TABLE = {key: name for name, cfg in TABLES.items() for key in ((prep_id(cfg, t), t) for t in cfg["tasks"])}
CONVERTERS = {cfg["backbone"]["name"]: cfg["backbone"]["convert"] for cfg in TABLES.values() if cfg["backbone"].get("convert")}

wildcard_constraints:
    scale="paper|mini",
    table="|".join(TABLES),
    method="[A-Za-z0-9_.]+",
    task="[a-z0-9_]+",
    seed="[0-9]+",
    dataset="[A-Za-z0-9_.-]+",
    backbone="[A-Za-z0-9_.-]+",

localrules: all, profile, table, estimate, audit, report


include: "rules/data.smk"
include: "rules/tune.smk"
include: "rules/train.smk"
include: "rules/profile.smk"
include: "rules/report.smk"
include: "rules/figures.smk"


rule all:
    input:
        [f"tables/{t}.csv" for t in TABLES],
        [f"tables/efficiency_{t}.csv" for t in TABLES],
