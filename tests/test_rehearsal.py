"""The paper path rehearsed (issue 17): one table per suite runs through ``snakemake`` at PAPER scale
to a finished ``tables/<t>.csv``, the way a user on an offline cluster does it: a copy of the whole
``config/`` folder (so the tables that share its data are there too) where only that table's own
config sets ``backbone.local_path`` and ``data.data_dir`` and is cut in epochs, tasks and seeds
(``--config config_dir=<copy>``). Backbones and data are the stand-ins of tests/paper_fixtures.py
(tiny random models of the real classes saved with ``save_pretrained``; a few rows in each
published schema). Slow: each table takes tens of seconds on 2 cores."""
from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml
from dag import ROOT, snakemake
from paper_fixtures import paper_fixtures  # noqa: F401 - session fixture

pytestmark = pytest.mark.slow


def cut_config(dst, table: str, *, local_path, data_dir, tasks: list[str], methods: list[str], edits: dict | None = None):
    """A copy of config/ where only ``table`` names the local copies, trains ``methods`` for one
    epoch on ``tasks`` with seed 0, one CPU per job (two jobs at once on 2 cores), and takes
    ``edits`` (dotted keys, e.g. ``data.max_eval``). Cutting the methods too keeps the four
    tables within a few minutes: a job costs ~20 s of start-up, evaluation and bookkeeping."""
    shutil.copytree(ROOT / "config", dst)
    path = dst / f"{table}.yaml"
    cfg = yaml.safe_load(path.read_text())
    cfg["backbone"]["local_path"], cfg["data"]["data_dir"] = str(local_path), str(data_dir)
    cfg["tasks"], cfg["seeds"] = tasks, [0]
    cfg["paper_values"] = str(ROOT / cfg["paper_values"])
    cfg["methods"] = {m: cfg["methods"][m] for m in methods}
    cfg.setdefault("resources", {})["train"] = {**cfg.get("resources", {}).get("train", {}), "cpus_per_task": 1, "gpus": 0}
    for block in cfg["methods"].values():
        block["defaults"] = {**(block.get("defaults") or {}), "epochs": 1}
        block["tasks"] = {t: {**v, "epochs": 1} for t, v in (block.get("tasks") or {}).items() if t in tasks}
    for key, value in (edits or {}).items():
        *parents, leaf = key.split(".")
        node = cfg
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return dst


def run_table(tmp_path, table: str, timeout: int = 300) -> pd.DataFrame:
    config_dir = tmp_path / "config"
    work = tmp_path / "work"
    work.mkdir()
    out = snakemake(work, config_dir, f"tables/{table}.csv", scale="paper", timeout=timeout)
    assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-6000:])
    df = pd.read_csv(work / "tables" / f"{table}.csv")
    assert len(df), df
    return df


def _finished(df: pd.DataFrame, methods: list[str], task: str) -> None:
    """Every method's cell of ``task`` holds a number (a failed or missing run leaves it empty)."""
    print(df.to_string())
    cells = df.set_index("method").reindex(methods)[task]
    assert cells.notna().all(), cells


def test_glue_base_from_save_to_disk(tmp_path, paper_fixtures):
    methods = ["lora", "fora"]
    cut_config(tmp_path / "config", "glue_base", local_path=paper_fixtures["roberta"], data_dir=paper_fixtures["glue"],
               tasks=["rte"], methods=methods, edits={"data.max_length": 64})
    _finished(run_table(tmp_path, "glue_base"), methods, "rte")


def test_vit_fora_base_from_save_to_disk(tmp_path, paper_fixtures):
    methods = ["lora", "fora"]  # data.image_size stays 224 (the backbone's)
    cut_config(tmp_path / "config", "vit_fora_base", local_path=paper_fixtures["vit"], data_dir=paper_fixtures["vision"],
               tasks=["eurosat"], methods=methods)
    _finished(run_table(tmp_path, "vit_fora_base"), methods, "eurosat")


# data.held_out: the loss-selection items held out of train (120 at paper scale; the stand-ins have 8-16)
GENERATION_CUT = {"generation": {"num_beams": 1, "max_new_tokens": 8, "baseline": False},
                  "train.gradient_checkpointing": False, "backbone.dtype": "float32", "data.held_out": 2}


def test_math_llama2_7b_from_the_hub_save_to_disk_copy(tmp_path, paper_fixtures):
    methods = ["lora_1ep", "fora_1ep"]
    # data.data_dir holds gsm8k/ and math/ as datasets.load_dataset(...).save_to_disk wrote them
    cut_config(tmp_path / "config", "math_llama2_7b", local_path=paper_fixtures["llama2"],
               data_dir=paper_fixtures["gsm8k"].parent, tasks=["gsm8k"], methods=methods,
               edits={**GENERATION_CUT, "data.max_eval": 4})
    _finished(run_table(tmp_path, "math_llama2_7b"), methods, "gsm8k")


def test_commonsense_moe_llama3_8b_from_an_llm_adapters_clone(tmp_path, paper_fixtures):
    methods = ["lora", "fourier_moe"]
    cut_config(tmp_path / "config", "commonsense_moe_llama3_8b", local_path=paper_fixtures["llama3"],
               data_dir=paper_fixtures["llm_adapters"], tasks=["commonsense170k"], methods=methods,
               edits={**GENERATION_CUT, "data.max_eval": 8,
                      # n = 1000 coefficients per expert do not fit the stand-in's 32 x 32 projections
                      "methods.fourier_moe.hparams.n": 16})
    _finished(run_table(tmp_path, "commonsense_moe_llama3_8b"), methods, "commonsense170k")
