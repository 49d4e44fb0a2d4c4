"""The report's summary (best per task, flagged cells, agreement with the paper) read from a
hand-made table CSV and a meta holding the ``cell_flags`` other stages write (docs/CONTRACTS.md),
the per-cell badges and verdicts, no spread for one seed, and a trade-off plot per table."""
import csv
import json
import re

from harness.report import build_report
from harness.summary import DIFFERS, NO_PAPER, REPRODUCED, agreement, summarize

TASKS = ["sst2", "cola"]


def _row(method, label, params, sst2, cola, **extra):
    row = {"method": method, "label": label, "registry_method": method.split(".")[0], "trainable_params": params,
           "sst2_seeds": "5/5", "sst2": sst2, "sst2_spread": "1.00", "cola_seeds": "5/5", "cola": cola,
           "cola_spread": "2.00", "scale": "paper"}
    return row | extra


def _paper_rows():
    return [
        # sst2: |94.0 - 95.5| = 1.5 <= 2 x max(1.0, none) = 2: reproduced; cola: |60 - 64.6| = 4.6 > 2 x 2: differs
        _row("fora", "FoRA", "24000", "94.00", "60.00", sst2_paper="95.5", cola_paper="64.6"),
        # sst2: |93 - 95.9| = 2.9 <= 2 x max(1.0, paper 1.5) = 3: reproduced; cola: no paper value
        _row("lora", "LoRA", "300000", "93.00", "63.00", sst2_paper="95.9", sst2_paper_spread="1.5",
             cola_tuned="lr=0.003 (3/3 trials, same budget for every method)"),
        # cola: the best value, but the adapter learned nothing per the meta's flags; sst2 failed
        _row("vera", "VeRA", "1000", "failed", "69.10", sst2_seeds="0/5 (5 failed)", sst2_spread=""),
        {"method": "baseline", "label": "majority", "registry_method": "", "trainable_params": "0",
         "sst2": "50.90", "cola": "0.00", "scale": "paper"},
    ]


META = {"table": "glue_base", "title": "GLUE, RoBERTa-base", "scale": "paper", "axes": [],
        "tasks": {"sst2": {"metric": "accuracy"}, "cola": {"metric": "matthews"}},
        "cell_flags": {"vera": {"cola": ["inert", "selected_on_test"]}, "lora": {"sst2": ["diverged"]}}}


def _write(dir_, name, rows, meta):
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(dir_ / f"{name}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    (dir_ / f"{name}.meta.json").write_text(json.dumps(meta))


def test_agreement_rule_by_hand():
    assert agreement({"t": "94.00", "t_spread": "1.00", "t_paper": "95.5"}, "t") == REPRODUCED    # 1.5 <= 2
    assert agreement({"t": "94.00", "t_spread": "1.00", "t_paper": "96.5"}, "t") == DIFFERS       # 2.5 > 2
    assert agreement({"t": "94.00", "t_spread": "1.00", "t_paper": "96.5", "t_paper_spread": "1.5"}, "t") == REPRODUCED
    assert agreement({"t": "94.00", "t_spread": "", "t_paper": "94.0"}, "t") == REPRODUCED       # one seed: equal only
    assert agreement({"t": "94.00", "t_spread": "", "t_paper": "94.1"}, "t") == DIFFERS
    assert agreement({"t": "94.00", "t_paper": ""}, "t") == NO_PAPER
    assert agreement({"t": "incomplete", "t_paper": "94.0"}, "t") is None


def test_summary_reads_flags_from_csv_and_meta():
    s = summarize("glue_base", _paper_rows(), META, TASKS)
    assert s.methods == ["FoRA", "LoRA", "VeRA"] and s.scale == "paper"
    assert s.best["sst2"] == (["FoRA"], 94.0, [])
    assert s.best["cola"] == (["VeRA"], 69.1, ["inert", "selected_on_test"])  # the best cell is suspect
    assert s.flagged == {"failed": ["VeRA / sst2"], "inert": ["VeRA / cola"], "selected_on_test": ["VeRA / cola"],
                         "diverged": ["LoRA / sst2"], "tuned": ["LoRA / cola"]}
    assert s.tuned == ["LoRA / cola: lr=0.003 (3/3 trials, same budget for every method)"]
    assert s.verdicts == {REPRODUCED: ["FoRA / sst2", "LoRA / sst2"], DIFFERS: ["FoRA / cola"],
                          NO_PAPER: ["LoRA / cola", "VeRA / cola"]}
    mini = summarize("glue_base", [r | {"scale": "mini"} for r in _paper_rows()], META | {"scale": "mini"}, TASKS)
    assert mini.verdicts == {}  # mini tables are never compared


def test_report_opens_with_the_summary_and_shows_flags_tradeoff_and_no_one_seed_spread(tmp_path):
    tables, figures = tmp_path / "tables", tmp_path / "figures"
    tables.mkdir()
    figures.mkdir()
    _write(tables, "glue_base", _paper_rows(), META)
    sweep = [_row(f"lora.rank{r}", "LoRA", str(1000 * r), f"{80 + r}.00", f"{50 + r}.00", rank=str(r),
                  sst2_seeds="1/1", sst2_spread="0.00", cola_seeds="1/1", cola_spread="", scale="mini") for r in (2, 8)]
    _write(tables, "fora_fig1_vit", sweep, {"scale": "mini", "axes": ["rank"], "tasks": {t: {} for t in TASKS},
                                            "cell_flags": {"lora.rank8": {"sst2": ["inert"]}}})
    (tables / "efficiency_glue_base.csv").write_text("method,task,peak_memory_mb\nfora,sst2,100\nlora,sst2,300\nvera,sst2,90\n")
    html = build_report(tables, figures, tmp_path / "r.html", root=tmp_path).read_text()
    body = html[html.index("<body>"):]
    assert body.index("id='summary'") < body.index('id="fora_fig1_vit"') < body.index('id="glue_base"')
    summary = body[body.index("id='summary'"):body.index("<nav>")]
    assert summary.count("<tr>") == 3  # the header and a row per table
    assert "1 differs" in summary and "2 reproduced" in summary and "2 no paper value" in summary
    assert "not compared (mini scale)" in summary
    assert "LoRA (rank=8)" in summary and "inert" in summary and "diverged" in summary and "lr=0.003" in summary
    assert "|ours - paper| &lt;= 2 x max" in summary  # the rule is stated
    section = body[body.index('id="glue_base"'):]
    assert '<span class="v-differs">differs</span>' in section and '<span class="v-reproduced">reproduced</span>' in section
    assert 'title="the adapter carries nothing' in section
    sweep_section = body[body.index('id="fora_fig1_vit"'):body.index('id="glue_base"')]
    assert "±" not in sweep_section  # one seed: no spread, even where an old CSV wrote 0.00
    # a trade-off plot per table (drawn by the report: the figures rule did not run here)
    assert len(re.findall(r"trade-off \(drawn by the report: \w+_tradeoff.png not built\)", body)) == 2
