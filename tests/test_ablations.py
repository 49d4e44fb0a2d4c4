"""Ablation and analysis figures (docs/figures.md): the paper-scale plan of every new table, the
mini configs, the analysis functions on tiny inputs, and the HTML report builder."""
import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dag import ROOT, env
from harness.config import load_table

# table -> (methods x values, tasks, seeds): the expected paper-scale plan, typed out
PAPER_PLAN = {
    "fora_fig1_glue": (8, 6, 5),          # LoRA at ranks 2^1..2^8
    "fora_fig1_vit": (8, 6, 5),
    "fora_fig3_glue": (4 * 5, 3, 5),      # LoRA, FoRA, masking, VeRA at ranks 2^3..2^7
    "fora_fig3_vit": (4 * 5, 3, 5),
    "lfma_topk_vit_base": (3, 7, 5),      # ratios 0.1, 0.05, 0.0003
    "lfma_topk_vit_large": (3, 7, 5),
    "lfma_topk_glue_base": (3, 6, 5),     # LFMA Table 2's ratios
    "lfma_topk_glue_large": (3, 6, 5),    # LFMA Table 3's ratios
    "faa_ablation": (1 + 1 + 1 + 4 + 4, 2, 5),   # full, beta=0, trainable W_rff, 4 num_grids, 4 sigmas
    "fourier_moe_fig3": (5, 3, 5),        # full, token router, real coefficients, random and shared locations
    "fourier_moe_fig4_n": (5, 3, 5),
    "fourier_moe_fig4_z": (4, 3, 5),
    "fourier_moe_fig4_k": (4, 3, 5),
    "frame_orders": (1, 4, 3),
}
# runs equal to a run of a table earlier in name order (harness.config.run_key): trained once, there
SHARED_RUNS = {
    "fora_fig3_glue": 5 * 3 * 5,      # LoRA at ranks 8..128 on MRPC, CoLA, RTE: FoRA Fig. 1's runs
    "fora_fig3_vit": 5 * 3 * 5,
    "fourier_moe_fig4_n": 3 * 5,      # n = 1000 at Z = 8, k = 2: Fig. 4 (right)'s k = 2 runs
    "fourier_moe_fig4_z": 3 * 5,      # Z = 8 at k = 2, n = 1000: the same runs
}
GLUE_TABLES = [t for t in PAPER_PLAN if load_table(ROOT / "config" / f"{t}.yaml")["suite"] == "glue"]


def _config_dir(tmp_path: Path, tables) -> Path:
    out = tmp_path / "config"
    (out / "mini").mkdir(parents=True)
    for t in tables:
        shutil.copy(ROOT / "config" / f"{t}.yaml", out)
    for f in (ROOT / "config" / "mini").glob("*.yaml"):
        shutil.copy(f, out / "mini")
    return out


@pytest.fixture(scope="module")
def paper_plan(tmp_path_factory):
    """One dry run of `figures` and the report at paper scale over the new tables only: train jobs per table."""
    tmp = tmp_path_factory.mktemp("plan")
    cfg = _config_dir(tmp, PAPER_PLAN)
    out = subprocess.run([sys.executable, "-m", "snakemake", "figures", "reports/paper.html", "-s", str(ROOT / "Snakefile"), "--directory",
                          str(tmp / "work"), "-n", "--cores", "1", "--config", "scale=paper", f"config_dir={cfg}"],
                         env=env(), capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    trains = re.findall(r"results/paper/([a-z0-9_]+)/[^/\s]+/[a-z0-9_]+/seed\d+/train\.json", out.stdout)
    counts = {m[1]: int(m[2]) for m in re.finditer(r"^(\S+)\s+(\d+)\s*$", out.stdout, re.M)}
    return {t: trains.count(t) for t in PAPER_PLAN}, counts


def test_the_report_waits_for_every_figure_and_the_parameter_audit(paper_plan):
    _, counts = paper_plan
    assert counts["report"] == counts["audit"] == counts["figures"] == 1


@pytest.mark.parametrize("table", list(PAPER_PLAN))
def test_paper_plan_is_methods_x_values_x_tasks_x_seeds(table, paper_plan):
    per_table, _ = paper_plan
    variants, tasks, seeds = PAPER_PLAN[table]
    cfg = load_table(ROOT / "config" / f"{table}.yaml")
    assert (len(cfg["methods"]), len(cfg["tasks"]), len(cfg["seeds"])) == (variants, tasks, seeds)
    assert per_table[table] == variants * tasks * seeds - SHARED_RUNS.get(table, 0)


def test_paper_plan_has_the_analysis_and_adapter_figures(paper_plan):
    _, counts = paper_plan
    assert counts["fourier_moe_fig1"] == 1 and counts["frame_orders_figure"] == 1 and counts["fourier_moe_fig5"] == 1
    assert counts["table"] == len(PAPER_PLAN) - 1   # frame_orders: only its adapters are read, its table is not built


def test_sweeps_carry_their_axes():
    cfg = load_table(ROOT / "config" / "fora_fig3_glue.yaml")
    assert cfg["methods"]["fora.rank128"]["axes"] == {"rank": 128}
    assert cfg["methods"]["fora.rank128"]["hparams"]["r"] == 128 and cfg["methods"]["fora.rank128"]["hparams"]["n"] == 500
    lf = load_table(ROOT / "config" / "lfma_topk_vit_base.yaml")
    assert {m["axes"]["ratio"]: m["hparams"]["alpha"] for m in lf["methods"].values()} == {0.1: 12.0, 0.05: 12.0, 0.0003: 120.0}


def test_lfma_glue_paper_values_match_by_ratio():
    from harness.tables import read_paper_values

    vals = read_paper_values(ROOT / "config" / "paper_values" / "ablations.csv", "lfma_topk_glue_base", ["ratio"])
    assert vals[("lfma.ratio0.0016", "rte", "0.0016")]["value"] == 80.9
    cfg = load_table(ROOT / "config" / "lfma_topk_glue_base.yaml")
    assert {(v, "sst2", str(m["axes"]["ratio"])) for v, m in cfg["methods"].items()} <= set(vals)


@pytest.mark.parametrize("table", GLUE_TABLES)
def test_mini_configs_load_small(table):
    cfg = load_table(ROOT / "config" / f"{table}.yaml", "mini")
    assert cfg["backbone"]["name"] == "all-MiniLM-L6-v2" and len(cfg["seeds"]) == 1
    assert len(cfg["methods"]) * len(cfg["tasks"]) <= 8


@pytest.mark.parametrize("table", [t for t in PAPER_PLAN if t not in GLUE_TABLES])
def test_vision_mini_configs_load(table):
    if not (ROOT / "config" / "mini" / "vision.yaml").is_file():
        pytest.skip("config/mini/vision.yaml (the vision suite's mini scale) does not exist yet")
    cfg = load_table(ROOT / "config" / f"{table}.yaml", "mini")
    assert len(cfg["seeds"]) == 1


# ----------------------------------------------------------------------------- analysis
def test_psd_of_a_single_frequency_matrix_is_at_that_frequency():
    from harness.analysis import row_psd

    d, k = 64, 5
    j = np.arange(d)
    w = np.stack([np.cos(2 * np.pi * k * j / d + phase) for phase in np.linspace(0, 3, 8)])
    freqs, p = row_psd(w)
    assert int(np.argmax(p)) == k and freqs[k] == pytest.approx(k / d)
    assert p[k] > 1e6 * np.delete(p, k).max()
    assert p.sum() * 2 == pytest.approx((w ** 2).sum(axis=1).mean(), rel=0.05)   # Parseval, up to DC/Nyquist


def test_token_spectrum_ignores_padding():
    from harness.analysis import token_spectrum

    d = 32
    h = np.zeros((1, 3, d))
    h[0, 0] = np.cos(2 * np.pi * 3 * np.arange(d) / d)
    h[0, 1:] = np.cos(2 * np.pi * 7 * np.arange(d) / d)  # padding
    _, p = token_spectrum(h, np.array([[1, 0, 0]]))
    assert int(np.argmax(p)) == 3 and p[7] < 1e-12


def test_layer_weight_psd_finds_each_layer():
    from harness.analysis import layer_weight_psd

    class Cfg:
        hidden_size = 16

    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.config = Cfg()
            self.layer = torch.nn.ModuleList(torch.nn.ModuleDict({"query": torch.nn.Linear(16, 16),
                                                                  "out": torch.nn.Linear(64, 16)}) for _ in range(3))

    psd = layer_weight_psd(M())
    assert sorted(psd) == [0, 1, 2] and all(p.shape == (9,) for p in psd.values())


def _fake_job(root: Path, task: str, seed: int, tensors: dict) -> Path:
    from adapters.io import save_tensors

    d = root / task / f"seed{seed}"
    d.mkdir(parents=True)
    save_tensors(tensors, d / "adapter.safetensors")
    (d / "eval.json").write_text(json.dumps({"variant": "v", "task": task, "seed": seed, "status": "ok"}))
    return d / "eval.json"


def test_frame_orders_from_saved_adapters(tmp_path):
    from harness.analysis import frame_orders

    evals = [_fake_job(tmp_path / "res", t, 0, {
        f"bert.encoder.layer.{i}.attention.self.{m}.orders": torch.tensor([0.1, 0.4, 0.6, 0.9]) + i / 100
        for i in range(2) for m in ("query", "value")}) for t in ("a", "b")]
    frame_orders([str(e) for e in evals], tmp_path / "fig" / "orders", tmp_path / "orders.csv", "mini")
    rows = list(csv.DictReader(open(tmp_path / "orders.csv")))
    assert len(rows) == 2 * 2 * 2 * 4
    r = next(r for r in rows if r["task"] == "b" and r["layer"] == "1" and r["module"] == "value" and r["expert"] == "3")
    assert float(r["order"]) == pytest.approx(0.91) and float(r["initial"]) == pytest.approx(0.875)
    assert (tmp_path / "fig" / "orders.png").stat().st_size > 0 and (tmp_path / "fig" / "orders.pdf").is_file()
    assert json.loads((tmp_path / "orders.meta.json").read_text())["figure"] == "orders"


@pytest.mark.parametrize("dtype", [torch.complex64, torch.float32])   # float32: coefficients='real'
def test_moe_coefficients_from_a_saved_adapter(tmp_path, dtype):
    from harness.analysis import moe_coefficients

    c = torch.zeros(3, 10, dtype=dtype)
    c[1] = -2 if dtype == torch.float32 else 2 + 0j
    ev = _fake_job(tmp_path, "t", 0, {f"roberta.encoder.layer.{i}.attention.self.query.coefficients": c.clone() for i in range(5)})
    moe_coefficients([str(ev)], tmp_path / "fig5", tmp_path / "fig5.csv", "mini")
    rows = list(csv.DictReader(open(tmp_path / "fig5.csv")))
    assert len(rows) == 5 * 3 and {float(r["mean_abs"]) for r in rows if r["expert"] == "1"} == {2.0}
    assert (tmp_path / "fig5.png").is_file()


# ----------------------------------------------------------------------------- report
def test_report_builder_on_fake_tables(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from harness.report import build_report

    tables, figures = tmp_path / "tables", tmp_path / "figures"
    tables.mkdir()
    figures.mkdir()
    rows = [{"method": "lora.rank8", "label": "LoRA", "registry_method": "lora", "rank": "8", "trainable_params": "100",
             "sst2_seeds": "5/5", "sst2": "94.00", "sst2_spread": "0.10", "sst2_paper": "95.1", "sst2_paper_spread": "0.2",
             "sst2_diff": "-1.10", "avg": "94.00", "avg_paper": "95.1", "scale": "paper", "backbone": "roberta-base"},
            {"method": "baseline", "label": "majority <b>", "registry_method": "", "rank": "", "trainable_params": "0",
             "sst2": "50.00", "scale": "paper", "backbone": "roberta-base"}]
    with open(tables / "sweep.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
        w.writeheader()
        w.writerows(rows)
    (tables / "sweep.meta.json").write_text(json.dumps({
        "table": "sweep", "title": "A sweep", "scale": "paper", "axes": ["rank"], "tasks": {"sst2": {"n_train": 10}},
        "shared_runs": {"lora.rank8": ["fora_fig1_glue/lora.rank8"]},
        "provenance": {"config": "config/fora_fig1_glue.yaml", "commit": "abc123", "worktree_modified": True,
                       "versions": {"torch": "2.x"}, "data": {"sst2": {"recipe": "glue"}}}}))
    (tables / "efficiency_sweep.csv").write_text("method,task,step_time_s\nlora.rank8,sst2,0.1\n")
    (tables / "params_audit.csv").write_text("source,method,ours\nFoRA Table 1,lora,294912\n")
    (tables / "spectra.csv").write_text("layer,frequency,psd\n0,0.0,1.0\n")
    (tables / "spectra.meta.json").write_text(json.dumps({"title": "PSD", "scale": "mini", "figure": "fig1"}))
    for name in ("sweep", "fig1", "loose"):
        fig = plt.figure(figsize=(1, 1))
        fig.savefig(figures / f"{name}.png")
        plt.close(fig)
    out = build_report(tables, figures, tmp_path / "r" / "report.html", root=ROOT, scale="paper")
    text = out.read_text()
    assert text.count("data:image/png;base64,") == 4                   # every figure, embedded once; + the sweep's trade-off
    assert "sweep_tradeoff.png not built" in text                      # drawn by the report (the figures rule did not run)
    assert "95.1" in text and "-1.10" in text and "abc123" in text     # ours next to the paper's, provenance
    assert "paper scale" in text and "mini scale" in text              # each table states its scale
    assert "efficiency_sweep.csv" in text and "294912" in text         # efficiency table, parameter audit
    assert "majority &lt;b&gt;" in text and "majority <b>" not in text  # escaped
    assert "table: fora_fig1_glue" in text                             # the config's text
    assert "lora.rank8: the runs of fora_fig1_glue/lora.rank8" in text  # a shared run says whose it is
    assert "http://" not in text.replace("http://www.w3.org", "")     # nothing to fetch
