"""The image-classification table configs against the seed papers.

``config/vit_lfma_{base,large}.yaml`` (LFMA Table 1, protocol of LFMA §4.1) and
``config/vit_fora_{base,large}.yaml`` (FoRA Table 4, hyperparameters of FoRA Table 9) are read
with plain ``yaml.safe_load``; every expected number below is typed from the seed text
(/work/shared/seeds/001_* and 004_*), never read from a config, so a typo in a config fails here.
"""
from __future__ import annotations

import csv
import statistics
from pathlib import Path

import pytest
import yaml

from adapters.registry import build_config

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "config"
FORA_TASKS = ["pets", "cars", "dtd", "eurosat", "fgvc", "resisc45"]  # FoRA Table 4 columns
LFMA_TASKS = ["cifar10", "cifar100", "pets", "resisc45", "cars", "eurosat", "fgvc"]  # LFMA Table 1 columns
TABLES = ["vit_lfma_base", "vit_lfma_large", "vit_fora_base", "vit_fora_large"]


def load(name: str) -> dict:
    return yaml.safe_load((CONFIG / f"{name}.yaml").read_text())


def settings(cfg: dict, variant: str, task: str) -> dict:
    """defaults, then the task's overrides; hparams merged the same way (method, defaults, task)."""
    m = cfg["methods"][variant]
    defaults, per_task = m.get("defaults") or {}, (m.get("tasks") or {}).get(task, {})
    out = {**defaults, **per_task}
    out["hparams"] = {**(m.get("hparams") or {}), **(defaults.get("hparams") or {}), **(per_task.get("hparams") or {})}
    out.setdefault("lr_head", out.get("lr"))
    out.setdefault("weight_decay", cfg["train"].get("weight_decay", 0.0))
    return out


# --- every table -------------------------------------------------------------------------------
@pytest.mark.parametrize("name", TABLES)
def test_shape_of_a_vision_table(name):
    cfg = load(name)
    assert cfg["table"] == name and cfg["suite"] == "vision"
    assert cfg["paper_values"] == "config/paper_values/vit.csv"
    assert cfg["data"] == {"data_dir": None, "image_size": 224, "max_train": None, "max_eval": None}
    size = name.rsplit("_", 1)[1]
    assert cfg["backbone"]["hub_id"] == f"google/vit-{size}-patch16-224-in21k"
    assert cfg["backbone"]["name"] == f"vit-{size}-patch16-224-in21k"  # also a config/architectures stem
    assert (CONFIG / "architectures" / f"{cfg['backbone']['name']}.json").is_file()
    assert cfg["backbone"]["target_modules"] == ["q_proj", "v_proj"]
    assert cfg["backbone"]["head_modules"] == ["classifier"]
    assert cfg["train"]["optimizer"] == "adamw"
    assert cfg["resources"]["train"]["gpus"] == 1


@pytest.mark.parametrize("name", TABLES)
def test_every_method_builds_with_the_registry(name):
    cfg = load(name)
    for variant, m in cfg["methods"].items():
        for task in cfg["tasks"]:
            s = settings(cfg, variant, task)
            build_config(m["method"], s["hparams"])  # raises MethodConfigError on a bad key or value
            assert {"lr", "batch_size", "epochs"} <= set(s), (variant, task)


def test_target_modules_are_the_vit_query_and_value_of_the_installed_transformers():
    """transformers 5.x names ViT's attention projections q_proj/k_proj/v_proj/o_proj."""
    from torch import nn
    from transformers import ViTConfig, ViTForImageClassification

    model = ViTForImageClassification(ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                                 intermediate_size=64, image_size=32, patch_size=16, num_labels=3))
    linears = {n.rsplit(".", 1)[-1] for n, mod in model.named_modules() if isinstance(mod, nn.Linear)}
    names = set()
    for name in TABLES:
        cfg = load(name)
        names |= set(cfg["backbone"]["target_modules"]) | set(cfg["backbone"]["head_modules"])
        for m in cfg["methods"].values():
            names |= set(m.get("target_modules") or [])
    assert names <= linears, names - linears


# --- LFMA Table 1 (seed 001, §4.1) -----------------------------------------------------------------
@pytest.mark.parametrize("name", ["vit_lfma_base", "vit_lfma_large"])
def test_lfma_table1_protocol(name):
    cfg = load(name)
    assert cfg["tasks"] == LFMA_TASKS  # seven datasets, no DTD
    assert set(cfg["methods"]) == {"lfma", "full_ft", "lora", "fourierft"}
    assert cfg["train"]["scheduler"] == "constant" and cfg["train"]["warmup_ratio"] == 0  # "No learning rate scheduler"
    assert cfg["train"]["weight_decay"] == 1e-4  # §4.1
    for variant in cfg["methods"]:
        for task in cfg["tasks"]:
            s = settings(cfg, variant, task)
            assert (s["lr"], s["lr_head"], s["batch_size"], s["weight_decay"]) == (1e-4, 1e-4, 32, 1e-4), (variant, task)
    lfma = cfg["methods"]["lfma"]
    assert lfma["method"] == "lfma" and lfma["hparams"]["ratio"] == 0.05 and lfma["hparams"]["alpha"] == 12  # Table 1 caption
    assert lfma["target_modules"] == ["q_proj"]  # §4.1: the query projection only


# --- FoRA Table 4 / Table 9 (seed 004) -------------------------------------------------------------
# Table 9, per dataset (OxfordPets, StanfordCars, DTD, EuroSAT, FGVC, RESISC): rank, LR (Head), LR (FoRA), WD
TABLE9 = {
    "vit_fora_base": {
        "r": [32, 128, 64, 64, 256, 32],
        "lr_head": [8e-3, 1e-2, 1e-2, 1e-4, 1e-2, 1e-2],
        "lr": [4e-3, 5e-2, 5e-3, 2e-2, 5e-2, 2e-2],
        "weight_decay": [4e-2, 1e-5, 2e-4, 4e-3, 2e-2, 9e-2],
    },
    "vit_fora_large": {
        "r": [64, 128, 128, 64, 256, 32],
        "lr_head": [6e-3, 5e-3, 1e-2, 1e-3, 1e-2, 1e-2],
        "lr": [5e-3, 3e-2, 4e-3, 3e-2, 8e-2, 1e-2],
        "weight_decay": [3e-4, 2e-5, 3e-5, 3e-3, 1e-2, 1e-3],
    },
}


@pytest.mark.parametrize("name", ["vit_fora_base", "vit_fora_large"])
def test_fora_table4_and_table9(name):
    cfg = load(name)
    assert cfg["tasks"] == FORA_TASKS
    assert set(cfg["methods"]) == {"linear_probe", "full_ft", "lora", "fourierft", "fora"}
    assert len(cfg["seeds"]) == 5 and cfg["aggregate"] == "mean"  # "averaged across 5 runs"
    methods = cfg["methods"]
    assert methods["linear_probe"]["method"] == "linear_probe"
    assert methods["lora"]["hparams"]["r"] == 16                 # §4.4 / Table 9
    assert methods["fourierft"]["hparams"]["n_frequency"] == 16000  # §4.4
    assert methods["fora"]["hparams"]["n"] == 8000                # §4.4 / Table 9
    for variant in methods:
        for task in FORA_TASKS:
            s = settings(cfg, variant, task)
            assert (s["epochs"], s["batch_size"]) == (10, 64), (variant, task)  # Table 9 shared rows
    t9 = TABLE9[name]
    for i, task in enumerate(FORA_TASKS):
        s = settings(cfg, "fora", task)
        assert s["hparams"]["r"] == t9["r"][i], task
        assert s["lr_head"] == t9["lr_head"][i] and s["lr"] == t9["lr"][i], task
        assert s["weight_decay"] == t9["weight_decay"][i], task
        for variant in ("linear_probe", "full_ft", "lora"):  # Table 9's head LR / WD carry no method name
            b = settings(cfg, variant, task)
            assert (b["lr_head"], b["weight_decay"]) == (t9["lr_head"][i], t9["weight_decay"][i]), (variant, task)


@pytest.mark.parametrize("name", ["vit_fora_base", "vit_fora_large"])
def test_fourierft_baseline_on_its_official_vit_scripts(name):
    """Chaos96/fourierft experiments/ViT/cars-base-3000.bash: --head_lr 1e-3 --weight_decay 4e-5
    --fft_lr 3e-1 --scale 300.0; eurosat-base-3000.bash: --head_lr 8e-4 --weight_decay 3e-4 --fft_lr 2e-1."""
    cfg = load(name)
    assert cfg["methods"]["fourierft"]["hparams"]["scaling"] == 300.0
    cars, eurosat = settings(cfg, "fourierft", "cars"), settings(cfg, "fourierft", "eurosat")
    assert (cars["lr"], cars["lr_head"], cars["weight_decay"]) == (0.3, 1e-3, 4e-5)
    assert (eurosat["lr"], eurosat["lr_head"], eurosat["weight_decay"]) == (0.2, 8e-4, 3e-4)


# --- config/paper_values/vit.csv ------------------------------------------------------------------
def paper_rows() -> list[dict]:
    with open(CONFIG / "paper_values" / "vit.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_paper_values_cover_exactly_the_configs():
    rows = paper_rows()
    have = {(r["table"], r["method"], r["task"]) for r in rows}
    assert len(have) == len(rows)  # no duplicate
    want = set()
    for name in TABLES:
        cfg = load(name)
        want |= {(name, v, t) for v in cfg["methods"] for t in cfg["tasks"]}
    assert have == want
    sources = {r["table"]: r["source"] for r in rows}
    assert sources == {"vit_lfma_base": "LFMA Table 1", "vit_lfma_large": "LFMA Table 1",
                       "vit_fora_base": "FoRA Table 4", "vit_fora_large": "FoRA Table 4"}


# The printed Avg. column of each row (typed from the seeds): the mean of our transcribed cells must
# round to it, which catches a mistyped cell.
PRINTED_AVG = {
    ("vit_lfma_large", "lfma"): 89.53, ("vit_lfma_base", "lfma"): 89.97,
    ("vit_lfma_large", "full_ft"): 89.71, ("vit_lfma_large", "lora"): 83.70, ("vit_lfma_large", "fourierft"): 85.68,
    ("vit_lfma_base", "full_ft"): 89.58, ("vit_lfma_base", "lora"): 79.76, ("vit_lfma_base", "fourierft"): 82.55,
    ("vit_fora_base", "linear_probe"): 61.03, ("vit_fora_base", "full_ft"): 85.79, ("vit_fora_base", "lora"): 83.42,
    ("vit_fora_base", "fourierft"): 84.36, ("vit_fora_base", "fora"): 84.71,
    ("vit_fora_large", "linear_probe"): 66.94, ("vit_fora_large", "full_ft"): 87.53, ("vit_fora_large", "lora"): 86.56,
    ("vit_fora_large", "fourierft"): 86.52, ("vit_fora_large", "fora"): 87.25,
}


def test_paper_values_reproduce_the_printed_averages():
    rows = paper_rows()
    for (table, method), avg in PRINTED_AVG.items():
        values = [float(r["value"]) for r in rows if r["table"] == table and r["method"] == method]
        assert abs(statistics.fmean(values) - avg) <= 0.005 + 1e-9, (table, method, statistics.fmean(values), avg)


def test_paper_values_spot_checks():
    by = {(r["table"], r["method"], r["task"]): r for r in paper_rows()}
    r = by[("vit_lfma_base", "fourierft", "cars")]
    assert (r["value"], r["spread"], r["params"]) == ("56.91", "", "")  # Table 1: no spread, no parameter column
    r = by[("vit_fora_base", "fora", "dtd")]
    assert (r["value"], r["spread"], r["params"]) == ("80.34", "1.03", "0.384M")
    r = by[("vit_fora_large", "full_ft", "fgvc")]
    assert (r["value"], r["spread"], r["params"]) == ("67.38", "1.06", "303M")
    assert by[("vit_fora_base", "linear_probe", "pets")]["params"] == "-"


# --- parameter audit: every method of the four tables has an audit row ----------------------------
def test_every_method_has_a_parameter_audit_row():
    """For each (table, backbone, method) a row of params.csv with the table's source whose
    hyperparameters are a subset of the config's (dropout and scaling do not change a count)."""
    from harness.audit import read_paper_values

    audit_rows = read_paper_values()
    for name in TABLES:
        cfg = load(name)
        source = "LFMA Table 1" if "lfma" in name else "FoRA Table 4"
        for variant, m in cfg["methods"].items():
            for task in cfg["tasks"]:
                hp = settings(cfg, variant, task)["hparams"]
                targets = m.get("target_modules") or (cfg["backbone"]["target_modules"] if hp else [])
                match = [r for r in audit_rows if r.source == source and r.backbone == cfg["backbone"]["name"]
                         and r.method == m["method"] and r.hparams.items() <= hp.items()
                         and r.target_modules == targets]
                assert match, (name, variant, task, hp, targets)


def test_fora_table4_counts_match_the_audit(tmp_path):
    from harness.audit import audit

    results = audit(tmp_path / "audit.csv", select=lambda r: r.source == "FoRA Table 4", log=None)
    assert len(results) == 16
    assert all(r["match"] == "yes" for r in results), [r for r in results if r["match"] != "yes"]
