"""Sweeps are configuration: an axis and its values expand into variants, jobs, rows and plot points."""
import csv
from pathlib import Path

import pytest
import yaml

from dag import snakemake, tiny_config
from harness.config import ConfigError, expand_sweeps, load_table, table_axes

RANK_SWEEP = {"axis": "rank", "values": [2, 4], "set": ["hparams.r", "hparams.alpha"]}


def _sweep_config(tmp_path: Path, **edits) -> Path:
    cfg_dir = tiny_config(tmp_path, **edits)
    cfg = yaml.safe_load((cfg_dir / "tiny.yaml").read_text())
    cfg["methods"]["lora"]["sweep"] = RANK_SWEEP
    (cfg_dir / "tiny.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return cfg_dir


def test_a_sweep_expands_into_one_variant_per_value(tmp_path):
    cfg = load_table(_sweep_config(tmp_path) / "tiny.yaml", "mini")
    assert list(cfg["methods"]) == ["lora.rank2", "lora.rank4", "fora"]
    two = cfg["methods"]["lora.rank2"]
    assert two["hparams"] == {"r": 2, "alpha": 2, "dropout": 0.0} and two["axes"] == {"rank": 2}
    assert two["sweep_of"] == "lora" and two["label"] == "LoRA (r=8)"  # tables and figures add the axis value
    assert table_axes(cfg) == ["rank"]


def test_a_swept_key_wins_over_per_task_values():
    methods = {"fora": {"label": "FoRA", "method": "fora", "hparams": {"n": 500},
                        "tasks": {"sst2": {"hparams": {"r": 32}, "lr": 0.02}, "rte": {"lr": 0.03}},
                        "sweep": {"axis": "lr", "values": [0.1], "set": ["lr"]}}}
    out = expand_sweeps(methods, Path("x.yaml"))["fora.lr0.1"]
    assert out["defaults"]["lr"] == 0.1 and out["tasks"] == {"sst2": {"hparams": {"r": 32}}, "rte": {}}
    assert methods["fora"]["tasks"]["sst2"]["lr"] == 0.02  # the input is not modified


def test_a_sweep_variant_may_not_shadow_a_method():
    methods = {"lora": {"label": "L", "method": "lora", "sweep": {"axis": "r", "values": [8]}},
               "lora.r8": {"label": "L8", "method": "lora"}}
    with pytest.raises(ConfigError, match=r"variant 'lora.r8' exists twice"):
        expand_sweeps(methods, Path("x.yaml"))


@pytest.mark.parametrize("axis", ["k", "n", "label"])
def test_an_axis_may_not_be_a_table_column(axis):
    """FourierMoE's top-k sweep named 'k' once broke its table: 'k' (seeds finished) is a column."""
    methods = {"moe": {"label": "M", "method": "fourier_moe", "sweep": {"axis": axis, "values": [1], "set": ["hparams.top_k"]}}}
    with pytest.raises(ConfigError, match=rf"sweep.axis: '{axis}' is a table column name"):
        expand_sweeps(methods, Path("x.yaml"))


@pytest.mark.slow
def test_a_sweep_table_end_to_end(tmp_path):
    """2 ranks x 1 task x 1 seed of LoRA, FoRA beside: a row per rank with its axis value, and the
    sweep figure."""
    cfg_dir = _sweep_config(tmp_path, tasks=["rt_polarity"], seeds=[0])
    cfg = yaml.safe_load((cfg_dir / "tiny.yaml").read_text())
    for m in cfg["methods"].values():
        m["defaults"]["epochs"] = 1
    (cfg_dir / "tiny.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    work = tmp_path / "work"
    out = snakemake(work, cfg_dir, "tables/tiny.csv")
    assert out.returncode == 0, out.stderr[-4000:]
    rows = list(csv.DictReader(open(work / "tables" / "tiny.csv")))
    assert [(r["method"], r["rank"]) for r in rows] == [("lora.rank2", "2"), ("lora.rank4", "4"), ("fora", ""),
                                                        ("baseline", "")]
    params = {r["method"]: int(r["trainable_params"]) for r in rows[:2]}
    assert params == {"lora.rank2": 6 * 2 * 2 * 384 * 2, "lora.rank4": 6 * 2 * 2 * 384 * 4}  # layers x (q,v) x (A,B) x d x r
    assert all(r["rt_polarity_seeds"] == "1/1" for r in rows[:3])
    assert (work / "figures" / "tiny.png").stat().st_size > 1000
