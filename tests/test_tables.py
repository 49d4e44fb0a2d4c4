"""Aggregation over seeds, best-epoch selection, paper values beside ours, failed cells."""
import csv
import json
import statistics
from pathlib import Path

import pytest

from harness.config import load_table
from harness.tables import aggregate, build_table, read_paper_values, write_table

ROOT = Path(__file__).resolve().parent.parent


def test_aggregate_median_and_spread():
    assert aggregate([90.0, 80.0, 85.0, 70.0, 95.0], "median") == (85.0, pytest.approx(statistics.stdev([90, 80, 85, 70, 95])))
    assert aggregate([1.0, 2.0], "mean") == (1.5, pytest.approx(0.70710678))
    assert aggregate([3.0], "median") == (3.0, 0.0)


def test_paper_values_come_from_the_data_file():
    ref = read_paper_values(ROOT / "config" / "paper_values" / "glue.csv", "glue_base")
    assert ref[("fora", "cola")] == {"value": 64.6, "spread": 1.0, "params": "0.024M", "source": "FoRA Table 1"}
    assert ref[("lfma_0.0016", "rte")]["source"] == "LFMA Table 2"


def _eval(variant, task, seed, metric, status="ok"):
    rec = {"status": status, "variant": variant, "task": task, "seed": seed, "epochs": 3, "trainable_params": 24000}
    return rec | ({"metric": metric} if status == "ok" else {"reason": "loss became nan at step 3"})


def test_table_rows_cells_and_failures(tmp_path):
    cfg = load_table(ROOT / "config" / "glue_base.yaml")
    cfg["methods"] = {k: cfg["methods"][k] for k in ("fora", "lora")}
    cfg["tasks"] = ["sst2", "cola"]
    evals = [_eval("fora", "sst2", s, m) for s, m in enumerate([94.0, 95.0, 96.0, 93.0, 94.5])]
    evals += [_eval("fora", "cola", s, m) for s, m in enumerate([60.0, 62.0, 64.0, 66.0])] + [_eval("fora", "cola", 4, None, "failed")]
    evals += [_eval("lora", "sst2", s, None, "failed") for s in range(5)]
    metas = {"sst2": {"baseline": {"value": 50.9}, "n_train": 10, "n_eval": 5}, "cola": {"baseline": {"value": 0.0}}}
    rows, scale = build_table(cfg, evals, metas)
    fora, lora, base = rows
    assert fora["sst2"] == "94.50" and fora["sst2_paper"] == "94.7" and fora["sst2_diff"] == "-0.20"
    assert fora["cola"] == "63.00" and fora["cola_seeds"] == "4/5 (1 failed)"
    assert fora["avg"] == "78.75" and fora["avg_paper"] == "79.7"  # mean of the two task cells; paper (94.7 + 64.6) / 2
    assert fora["beats_baseline_on_all_tasks"] == "yes"
    assert lora["sst2"] == "failed" and lora["avg"] == ""
    assert base["method"] == "baseline" and base["sst2"] == "50.90"
    assert scale["scale"] == "paper" and scale["seeds"] == [0, 1, 2, 3, 4]
    write_table(rows, scale, tmp_path / "t.csv", tmp_path / "t.meta.json")
    back = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert [r["method"] for r in back] == ["fora", "lora", "baseline"] and back[0]["scale"] == "paper"
    assert json.loads((tmp_path / "t.meta.json").read_text())["backbone"] == "roberta-base"


def test_mini_scale_never_shows_paper_values():
    cfg = load_table(ROOT / "config" / "glue_base.yaml", "mini")
    evals = [_eval("fora", "rt_polarity", s, 70.0 + s) for s in range(3)]
    rows, scale = build_table(cfg, evals, {})
    fora = next(r for r in rows if r["method"] == "fora")
    assert fora["rt_polarity"] == "71.00" and fora["rt_polarity_paper"] == "" and scale["scale"] == "mini"
