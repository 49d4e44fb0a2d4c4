"""Aggregation over seeds, best- and last-epoch columns, paper values beside ours, incomplete and
failed cells, sweep axes, and the table's statement of its protocol and provenance.

Every expected number is typed here, worked out by hand in the comment beside it."""
import csv
import json
import platform
import statistics
import subprocess
from importlib import metadata
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


def _eval(variant, task, seed, metric, status="ok", **extra):
    rec = {"status": status, "variant": variant, "task": task, "seed": seed, "epochs": 3, "trainable_params": 24000}
    return rec | ({"metric": metric} if status == "ok" else {"reason": "loss became nan at step 3"}) | extra


def _paper_cfg(methods=("fora", "lora"), tasks=("sst2", "cola")):
    cfg = load_table(ROOT / "config" / "glue_base.yaml")
    cfg["methods"] = {k: cfg["methods"][k] for k in methods}
    cfg["tasks"] = list(tasks)
    return cfg


METAS = {"sst2": {"baseline": {"value": 50.9}, "n_train": 10, "n_eval": 5, "source": "glue/sst2 via datasets"},
         "cola": {"baseline": {"value": 0.0}, "source": "glue/cola via datasets"}}


def test_complete_cells_same_values_as_before(tmp_path):
    """All seeds finished: the numbers the table has always printed (median, sample std, paper, diff, avg)."""
    cfg = _paper_cfg()
    evals = [_eval("fora", "sst2", s, m) for s, m in enumerate([94.0, 95.0, 96.0, 93.0, 94.5])]
    evals += [_eval("fora", "cola", s, m) for s, m in enumerate([60.0, 62.0, 64.0, 66.0, 61.0])]
    evals += [_eval("lora", "sst2", s, None, "failed") for s in range(5)]
    rows, scale = build_table(cfg, evals, METAS)
    fora, lora, base = rows
    # sst2: median 94.5; mean 94.5, squared deviations .25+.25+2.25+2.25+0 = 5, /4 -> sqrt(1.25) = 1.118
    assert (fora["sst2"], fora["sst2_spread"], fora["sst2_seeds"]) == ("94.50", "1.12", "5/5")
    assert (fora["sst2_paper"], fora["sst2_paper_spread"], fora["sst2_diff"]) == ("94.7", "0.3", "-0.20")
    # cola: median 62; mean 62.6, squared deviations 6.76+0.36+1.96+11.56+2.56 = 23.2, /4 -> sqrt(5.8) = 2.408
    assert (fora["cola"], fora["cola_spread"], fora["cola_diff"]) == ("62.00", "2.41", "-2.60")  # paper 64.6
    assert fora["cola_partial"] == "" and fora["sst2_partial"] == ""
    assert fora["avg"] == "78.25" and fora["avg_paper"] == "79.7" and fora["avg_diff"] == "-1.45"  # (94.5+62)/2; (94.7+64.6)/2
    assert fora["beats_baseline_on_all_tasks"] == "yes" and fora["trainable_params"] == 24000
    assert fora["paper_source"] == "FoRA Table 1" and fora["paper_params"] == "0.024M"
    assert lora["sst2"] == "failed" and lora["sst2_seeds"] == "0/5 (5 failed)" and lora["sst2_partial"] == ""
    assert lora["avg"] == "" and lora["beats_baseline_on_all_tasks"] == ""
    assert base["method"] == "baseline" and base["sst2"] == "50.90" and base["cola"] == "0.00"
    assert scale["scale"] == "paper" and scale["seeds"] == [0, 1, 2, 3, 4]

    cfg["aggregate"] = "mean"
    fora = build_table(cfg, evals, METAS)[0][0]
    assert fora["cola"] == "62.60" and fora["avg"] == "78.55"  # (94.5 + 62.6) / 2

    write_table(rows, scale, tmp_path / "t.csv", tmp_path / "t.meta.json")
    with open(tmp_path / "t.csv", newline="") as f:
        header = next(csv.reader(f))
    def task_block(t):
        return [f"{t}_seeds", t, f"{t}_spread", f"{t}_paper", f"{t}_paper_spread", f"{t}_diff", f"{t}_last", f"{t}_partial"]
    assert header == ["method", "label", "registry_method", "trainable_params", *task_block("sst2"), *task_block("cola"),
                      "avg", "avg_paper", "avg_diff", "beats_baseline_on_all_tasks", "paper_source", "paper_params",
                      "scale", "backbone"]
    with open(tmp_path / "t.csv", newline="") as f:
        back = list(csv.DictReader(f))
    assert [r["method"] for r in back] == ["fora", "lora", "baseline"] and back[0]["scale"] == "paper"
    assert back[0]["sst2"] == "94.50" and back[2]["trainable_params"] == "0"
    assert json.loads((tmp_path / "t.meta.json").read_text())["backbone"] == "roberta-base"


def test_a_diverged_seed_makes_the_cell_incomplete_not_a_smaller_median():
    cfg = _paper_cfg()
    evals = [_eval("fora", "sst2", s, m) for s, m in enumerate([94.0, 95.0, 96.0, 93.0, 94.5])]
    evals += [_eval("fora", "cola", s, m) for s, m in enumerate([60.0, 62.0, 64.0, 66.0])] + [_eval("fora", "cola", 4, None, "failed")]
    fora = build_table(cfg, evals, METAS)[0][0]
    assert fora["cola_seeds"] == "4/5 (1 failed)"
    assert fora["cola"] == "incomplete" and fora["cola_partial"] == "63.00"  # median of 60, 62, 64, 66
    assert fora["cola_spread"] == "" and fora["cola_diff"] == "" and fora["cola_last"] == ""
    assert fora["cola_paper"] == "64.6"  # the paper's value is still shown
    assert fora["sst2"] == "94.50"  # the complete cell of the same row is unaffected
    assert fora["avg"] == "" and fora["avg_diff"] == "" and fora["beats_baseline_on_all_tasks"] == ""


def test_mini_diverged_missing_and_nan_seeds():
    cfg = load_table(ROOT / "config" / "glue_base.yaml", "mini")  # seeds 0, 1, 2
    assert cfg["seeds"] == [0, 1, 2]
    t1, t2, t3 = cfg["tasks"]
    evals = [_eval("fora", t1, 0, 70.0), _eval("fora", t1, 1, 73.0), _eval("fora", t1, 2, None, "failed")]
    evals += [_eval("fora", t2, s, None, "failed") for s in range(3)]
    evals += [_eval("fora", t3, 0, 10.0), _eval("fora", t3, 1, 20.0)]  # seed 2 has no record
    evals += [_eval("lora", t1, s, m) for s, m in enumerate([70.0, float("nan"), 72.0])]  # status ok, metric nan
    rows, _ = build_table(cfg, evals, {})
    fora, lora = (next(r for r in rows if r["method"] == m) for m in ("fora", "lora"))
    assert fora[f"{t1}_seeds"] == "2/3 (1 failed)" and fora[t1] == "incomplete" and fora[f"{t1}_partial"] == "71.50"
    assert fora[f"{t2}_seeds"] == "0/3 (3 failed)" and fora[t2] == "failed" and fora[f"{t2}_partial"] == ""
    assert fora[f"{t3}_seeds"] == "2/3 (1 missing)" and fora[t3] == "incomplete" and fora[f"{t3}_partial"] == "15.00"
    assert lora[f"{t1}_seeds"] == "2/3 (1 failed)" and lora[t1] == "incomplete" and lora[f"{t1}_partial"] == "71.00"
    assert lora[f"{t2}_seeds"] == "0/3 (3 missing)" and lora[t2] == ""  # never run: empty, not 'failed'


def test_last_epoch_column():
    cfg = _paper_cfg(methods=("fora", "lora", "vera"))
    evals = [_eval("fora", "sst2", s, b, last_metric=l, last_epoch=3)
             for s, (b, l) in enumerate([(94.0, 93.0), (95.0, 91.0), (96.0, 96.0), (93.0, 92.5), (94.5, 90.0)])]
    evals += [_eval("fora", "cola", s, 60.0 + s, last_metric=50.0 + 2 * s, last_epoch=3) for s in range(5)]
    evals += [_eval("lora", "sst2", s, 90.0 + s) for s in range(5)]  # older records: no last_metric
    evals += [_eval("vera", "sst2", s, 90.0 + s, **({"last_metric": 80.0, "last_epoch": 3} if s else {})) for s in range(5)]
    rows, scale = build_table(cfg, evals, METAS)
    fora, lora, vera = rows[:3]
    assert fora["sst2"] == "94.50" and fora["sst2_last"] == "92.50"  # last: 93, 91, 96, 92.5, 90 -> median 92.5
    assert fora["cola"] == "62.00" and fora["cola_last"] == "54.00"  # 50, 52, 54, 56, 58
    assert lora["sst2"] == "92.00" and lora["sst2_last"] == ""  # absent: empty, the best-epoch cell unaffected
    assert vera["sst2"] == "92.00" and vera["sst2_last"] == ""  # one seed lacks it: not a median of four
    assert scale["last_epochs"]["fora"] == [3] and scale["last_epochs"]["lora"] == []
    cfg["aggregate"] = "mean"
    assert build_table(cfg, evals, METAS)[0][0]["sst2_last"] == "92.50"  # (93+91+96+92.5+90)/5 = 462.5/5


def test_sweep_axis_gives_a_row_per_value(tmp_path):
    paper = tmp_path / "paper.csv"
    paper.write_text("source,table,method,task,value,spread,params,rank\n"
                     "FoRA Table 9,glue_base,fora,sst2,90.0,,0.1M,8\n"
                     "FoRA Table 1,glue_base,lora,sst2,95.1,0.2,0.3M,\n")
    cfg = _paper_cfg(tasks=("sst2",))
    cfg["paper_values"] = str(paper)
    evals = []
    for rank, ms in [(16, [93.0, 94.0, 95.0, 92.0, 91.0]), (4, [80.0, 81.0, 82.0, 83.0, 84.0]), (8, [88.0, 89.0, 90.0, 91.0, 92.0])]:
        evals += [_eval("fora", "sst2", s, m, axes={"rank": rank}) | {"trainable_params": 1000 * rank} for s, m in enumerate(ms)]
    evals += [_eval("lora", "sst2", s, 95.0) for s in range(5)]
    rows, scale = build_table(cfg, evals, METAS, axes=["rank"])
    assert [(r["method"], r["rank"]) for r in rows] == [("fora", "4"), ("fora", "8"), ("fora", "16"), ("lora", ""), ("baseline", "")]
    f4, f8, f16, lora = rows[:4]
    assert (f4["sst2"], f8["sst2"], f16["sst2"], lora["sst2"]) == ("82.00", "90.00", "93.00", "95.00")
    assert (f4["trainable_params"], f8["trainable_params"], f16["trainable_params"]) == (4000, 8000, 16000)
    assert f8["sst2_paper"] == "90.0" and f8["sst2_diff"] == "0.00" and f8["paper_source"] == "FoRA Table 9"
    assert f4["sst2_paper"] == "" and f16["sst2_paper"] == ""  # the paper printed rank 8 only
    assert lora["sst2_paper"] == "95.1"  # no axis value on either side: matches
    assert list(rows[0])[:5] == ["method", "label", "registry_method", "rank", "trainable_params"]
    assert scale["axes"] == ["rank"]

    with pytest.raises(ValueError, match="differ in sweep axis 'rank'"):
        build_table(cfg, evals, METAS)  # not grouped: the three ranks would pool into one median
    with pytest.raises(ValueError, match="clashes"):
        build_table(cfg, evals, METAS, axes=["sst2"])


def test_unswept_row_shows_the_axis_value_it_ran_with_and_one_seed_has_no_spread():
    """The FAA ablation's FAA row beside its num_grids sweep: num_grids 9 from its method config
    (the paper value still matched on the empty axis value); LoRA's config has no num_grids: empty.
    One seed: no spread (a sample std of one value does not exist)."""
    cfg = _paper_cfg(methods=("fora", "lora", "vera"), tasks=("sst2",))
    cfg["seeds"] = [0]
    evals = [_eval("fora", "sst2", 0, 80.0 + g, axes={"num_grids": g}) | {"method_config": {"num_grids": g}}
             for g in (3, 12)]
    evals += [_eval("vera", "sst2", 0, 91.0) | {"method_config": {"num_grids": 9, "sigma": 1.0}},
              _eval("lora", "sst2", 0, 95.0) | {"method_config": {"r": 8}}]
    rows, scale = build_table(cfg, evals, METAS, axes=["num_grids"])
    by = {(r["method"], r["num_grids"]): r for r in rows}
    assert list(by) == [("fora", "3"), ("fora", "12"), ("lora", ""), ("vera", "9"), ("baseline", "")]
    assert by[("vera", "9")]["sst2"] == "91.00" and by[("vera", "9")]["sst2_spread"] == ""
    assert by[("vera", "9")]["sst2_paper"] != ""  # matched on the empty axis value, before it was filled
    assert by[("fora", "3")]["sst2_seeds"] == "1/1" and by[("fora", "3")]["sst2_spread"] == ""


def test_meta_states_protocol_and_provenance(tmp_path):
    cfg = _paper_cfg()
    evals = [_eval("fora", "sst2", s, 90.0) for s in range(5)]
    _, scale = build_table(cfg, evals, METAS)
    assert scale["selection"] == ("best epoch selected on the validation split and reported on that same split "
                                  "(the papers' protocol); `<task>_last` = last epoch")
    assert scale["aggregate"] == "median over seeds of the best epoch; spread = sample std over seeds"
    assert "last epoch" in scale["aggregate_last"] and "incomplete" in scale["incomplete_cells"]
    prov = scale["provenance"]
    assert prov["config"] == str(ROOT / "config" / "glue_base.yaml")
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert prov["commit"] == head and scale["commit"] == head
    versions = prov["versions"]
    assert set(versions) == {"torch", "transformers", "peft", "datasets", "numpy", "pandas", "python"}
    for pkg in ("torch", "transformers", "peft", "datasets", "numpy", "pandas"):
        assert versions[pkg] == metadata.version(pkg)
    assert versions["python"] == platform.python_version()
    assert prov["data"] == {"sst2": "glue/sst2 via datasets", "cola": "glue/cola via datasets"}
    write_table(*build_table(cfg, evals, METAS), tmp_path / "t.csv", tmp_path / "t.meta.json")
    assert json.loads((tmp_path / "t.meta.json").read_text())["provenance"]["versions"]["pandas"] == metadata.version("pandas")


def test_mini_scale_never_shows_paper_values():
    cfg = load_table(ROOT / "config" / "glue_base.yaml", "mini")
    evals = [_eval("fora", "rt_polarity", s, 70.0 + s) for s in range(3)]
    rows, scale = build_table(cfg, evals, {})
    fora = next(r for r in rows if r["method"] == "fora")
    assert fora["rt_polarity"] == "71.00" and fora["rt_polarity_paper"] == "" and scale["scale"] == "mini"


def test_meta_records_the_adapter_config_each_variant_ran():
    """Defaults the config did not spell out (FRAME's transform, ...) are stated in the table's meta."""
    cfg = _paper_cfg()
    chirp, exact = {"num_experts": 4, "transform": "chirp"}, {"num_experts": 4, "transform": "dfrft"}
    evals = [_eval("fora", "sst2", s, 90.0, method_config=chirp) for s in range(2)]
    evals += [_eval("lora", "sst2", 0, 90.0, method_config=chirp), _eval("lora", "sst2", 1, 90.0, method_config=exact)]
    _, scale = build_table(cfg, evals, METAS)
    assert scale["method_configs"] == {"fora": chirp, "lora": [chirp, exact]}  # runs that disagree are all listed


def test_rows_say_where_they_beat_the_linear_probe():
    """FoRA Table 4's floor is linear probing: each other row lists the tasks where it beats LP."""
    cfg = load_table(ROOT / "config" / "vit_fora_base.yaml")
    cfg["methods"] = {k: cfg["methods"][k] for k in ("linear_probe", "lora", "fora")}
    cfg["tasks"], cfg["seeds"] = ["pets", "dtd"], [0]
    metas = {t: {"baseline": {"value": 3.0}} for t in cfg["tasks"]}
    evals = [_eval("linear_probe", "pets", 0, 90.0), _eval("linear_probe", "dtd", 0, 70.0),
             _eval("lora", "pets", 0, 91.0), _eval("lora", "dtd", 0, 69.0),  # beats LP on pets only
             _eval("fora", "pets", 0, 89.0)]                                 # dtd missing: cannot say
    rows = {r["method"]: r for r in build_table(cfg, evals, metas)[0]}
    assert rows["lora"]["beats_linear_probe_on"] == "pets"
    assert rows["fora"]["beats_linear_probe_on"] == ""
    assert "beats_linear_probe_on" not in rows["linear_probe"]
    cfg["methods"].pop("linear_probe")  # no probe row: no column
    assert all("beats_linear_probe_on" not in r for r in build_table(cfg, evals[2:], metas)[0])


def test_tuned_cells_say_so_with_their_budget():
    """FoRA §4.1's random search: the table says which cells ran tuned values, and with what budget."""
    cfg = _paper_cfg()
    tuned = {"params": {"lr": 0.012345, "hparams.r": 8}, "trials": 3, "completed": 3, "fair": True}
    evals = [_eval("fora", "sst2", s, 90.0, tuned=tuned) for s in range(5)]
    evals += [_eval("lora", "sst2", s, 90.0) for s in range(5)]
    rows, scale = build_table(cfg, evals, METAS)
    fora, lora = rows[0], rows[1]
    assert fora["sst2_tuned"] == "lr=0.0123, hparams.r=8 (3/3 trials, same budget for every method)"
    assert lora["sst2_tuned"] == fora["cola_tuned"] == ""
    assert scale["tuned"] == {"fora/sst2": tuned}
    untuned, _ = build_table(cfg, [e for e in evals if e["variant"] == "lora"], METAS)
    assert not any(k.endswith("_tuned") for r in untuned for k in r)  # untuned tables keep their columns


def test_the_baseline_row_names_what_it_is_and_the_meta_the_models_loaded():
    """Issue 17: the instruct tables' no-training row is the untrained model generating, not a
    majority class; the meta lists the model each run loaded (folder, revision, weights)."""
    model = {"hub_id": "FacebookAI/roberta-base", "path": "/models/roberta-base", "source": "folder", "revision": None,
             "weights": {"sha256": "ab" * 32, "files": 2}}
    rows, scale = build_table(_paper_cfg(), [_eval("fora", t, s, 60.0, model=model) for t in ("sst2", "cola")
                                             for s in range(5)], METAS)
    assert rows[-1]["label"] == "majority class / constant (no training)" and scale["models"] == [model]
    cfg = load_table(ROOT / "config" / "math_llama2_7b.yaml")
    cfg["methods"] = {k: cfg["methods"][k] for k in ("lora_1ep",)}
    rows, _ = build_table(cfg, [_eval("lora_1ep", "gsm8k", 0, 30.0)], {"gsm8k": {"baseline": {"value": 2.0}}})
    assert rows[-1]["method"] == "baseline" and rows[-1]["label"] == "untrained model (no training)"


def test_a_further_metric_is_its_own_column_beside_its_task(tmp_path):
    """MATH by equivalence is the ``math`` column; each run's ``extra_metrics`` (``math_strict``, the
    strict string match) is a column of its own right after it, aggregated like a task (best and
    last epoch, seeds, failed runs), out of ``avg``; the baseline row scores it too."""
    cfg = load_table(ROOT / "config" / "math_llama2_7b.yaml")
    cfg["methods"] = {k: cfg["methods"][k] for k in ("lora_1ep", "fora_1ep")}
    cfg["seeds"] = [0, 1]
    strict = [{"extra_metrics": {"math_strict": v}, "last_extra_metrics": {"math_strict": v - 1}} for v in (3.0, 5.0)]
    evals = [_eval("lora_1ep", "gsm8k", s, 30.0, last_metric=29.0) for s in (0, 1)]
    evals += [_eval("lora_1ep", "math", s, m, last_metric=m, **x) for s, m, x in zip((0, 1), (6.0, 8.0), strict)]
    evals += [_eval("fora_1ep", "gsm8k", 0, 31.0), _eval("fora_1ep", "math", 0, 7.0, **strict[0]),
              _eval("fora_1ep", "math", 1, None, "failed")]
    metas = {"gsm8k": {"baseline": {"value": 2.0}}, "math": {"baseline": {"value": 1.0, "extra_metrics": {"math_strict": 0.5}}}}
    rows, scale = build_table(cfg, evals, metas)
    lora, fora, base = rows
    assert (lora["math"], lora["math_strict"], lora["math_strict_seeds"]) == ("7.00", "4.00", "2/2")  # means of 6,8 / 3,5
    assert lora["math_strict_last"] == "3.00" and lora["math_strict_spread"] == "1.41"  # mean of 2,4; std of 3,5
    assert lora["math_strict_paper"] == "" and lora["math_paper"] == "4.3"  # FoRA Table 2 prints MATH only (4.35)
    assert lora["avg"] == "18.50"  # (30 + 7) / 2: the strict column is not a task of the average
    assert fora["math"] == fora["math_strict"] == "incomplete" and fora["math_strict_seeds"] == "1/2 (1 failed)"
    assert base["math"] == "1.00" and base["math_strict"] == "0.50" and base["gsm8k"] == "2.00"
    assert scale["extra_columns"] == {"math_strict": "math"} and scale["tasks"]["math_strict"]["column_of"] == "math"
    write_table(rows, scale, tmp_path / "t.csv", tmp_path / "t.meta.json")
    header = (tmp_path / "t.csv").read_text().splitlines()[0].split(",")
    assert header.index("math") < header.index("math_strict_seeds") < header.index("math_strict") < header.index("avg")
