"""The GLUE tables run every baseline on its own published recipe.

The expected numbers below are typed from the sources, not from the configs:
  LoRA       microsoft/LoRA examples/NLU/roberta_base_<task>.sh; LoRA paper (2106.09685) Table 9 († rows)
  FourierFT  Chaos96/fourierft experiments/GLUE/<task>-<size>-best.sh, logs_glue file names, paper Table 9
  VeRA       VeRA paper (2310.11454) Table 8
  BitFit     benzakenelad/BitFit run_glue.py / README
  FF         fairseq examples/roberta/README.glue.md
  FoRA       FoRA (004) Table 6
"""
import pytest

from adapters.registry import build_config
from harness.config import ROOT, job_settings, load_table, tune_spec, validate_tuning


@pytest.fixture(scope="module")
def base():
    return load_table(ROOT / "config" / "glue_base.yaml")


@pytest.fixture(scope="module")
def large():
    return load_table(ROOT / "config" / "glue_large.yaml")


def settings(cfg, method, task):
    return job_settings(cfg, method, task, 0)


def check(s, lr=None, lr_head=None, batch_size=None, epochs=None, weight_decay=None, **hparams):
    for key, want in dict(lr=lr, lr_head=lr_head, batch_size=batch_size, epochs=epochs, weight_decay=weight_decay).items():
        if want is not None:
            assert getattr(s, key) == pytest.approx(want), (s.variant, s.task, key)
    for key, want in hparams.items():
        assert s.hparams[key] == pytest.approx(want), (s.variant, s.task, key)


# roberta_base_<task>.sh: --learning_rate, --per_device_train_batch_size, --num_train_epochs; all: r 8, alpha 16, wd 0.1
@pytest.mark.parametrize("task, lr, bs, epochs", [
    ("sst2", 5e-4, 16, 60), ("mrpc", 4e-4, 16, 30), ("cola", 4e-4, 32, 80),
    ("qnli", 4e-4, 32, 25), ("rte", 5e-4, 32, 80), ("stsb", 4e-4, 16, 40),
])
def test_lora_base_is_the_lora_repo_scripts(base, task, lr, bs, epochs):
    check(settings(base, "lora", task), lr=lr, lr_head=lr, batch_size=bs, epochs=epochs, weight_decay=0.1, r=8, alpha=16)


# LoRA Table 9, "RoBERTa large LoRA†": batch 4, alpha 16; SST-2 4E-04 x 10, CoLA 2E-04 x 20, STS-B 2E-04 x 10
@pytest.mark.parametrize("task, lr, epochs", [("sst2", 4e-4, 10), ("cola", 2e-4, 20), ("rte", 4e-4, 20), ("stsb", 2e-4, 10)])
def test_lora_large_is_the_dagger_row_of_lora_table_9(large, task, lr, epochs):
    check(settings(large, "lora", task), lr=lr, batch_size=4, epochs=epochs, weight_decay=0.1, r=8, alpha=16)


# <task>-base-best.sh: --fft_lr --head_lr --num_epoch --scale, --bs 32; epochs of MRPC and STS-B: the logs of the
# reported runs (logs_glue/mrpc/base/*: 50 epochs, logs_glue/stsb/base/*: 80, every seed)
@pytest.mark.parametrize("task, lr, head, epochs, scale", [
    ("sst2", 0.05, 0.006, 40, 140), ("mrpc", 0.05, 0.006, 50, 151), ("cola", 0.12, 0.008, 100, 49),
    ("qnli", 0.1, 0.001, 40, 29), ("rte", 0.09, 0.011, 90, 110), ("stsb", 0.09, 0.009, 80, 84),
])
def test_fourierft_base_is_the_official_best_scripts(base, task, lr, head, epochs, scale):
    check(settings(base, "fourierft", task), lr=lr, lr_head=head, batch_size=32, epochs=epochs, weight_decay=0.0,
          n_frequency=1000, scaling=scale)


# FourierFT Table 9 LARGE (MRPC: the logs' h_lr0.001/scale120.0 agree with the paper, not with the script);
# epochs of MRPC, SST-2 and STS-B: the logs (logs_glue/mrpc/large/*: 50, sst2/large/*: 15, stsb/large/*scale121*: 50)
@pytest.mark.parametrize("task, lr, head, epochs, bs, scale", [
    ("cola", 0.043, 0.011, 80, 128, 120), ("rte", 0.08, 0.005, 60, 32, 90), ("mrpc", 0.06, 0.001, 50, 32, 120),
    ("sst2", 0.043, 0.001, 15, 32, 99), ("stsb", 0.07, 0.001, 50, 32, 121),
])
def test_fourierft_large(large, task, lr, head, epochs, bs, scale):
    check(settings(large, "fourierft", task), lr=lr, lr_head=head, batch_size=bs, epochs=epochs, scaling=scale)


# VeRA Table 8: BASE rank 1024, batch 64 (1 GPU); LARGE rank 256, 4 GPUs x 32
@pytest.mark.parametrize("task, epochs, head, lr", [("sst2", 60, 4e-3, 4e-3), ("rte", 160, 1e-2, 4e-3), ("mrpc", 30, 4e-3, 1e-2)])
def test_vera_base_is_its_table_8(base, task, epochs, head, lr):
    check(settings(base, "vera", task), lr=lr, lr_head=head, epochs=epochs, batch_size=64, r=1024, d_initial=0.1)


@pytest.mark.parametrize("task, epochs, head, lr", [("qnli", 20, 2e-4, 1e-2), ("mrpc", 40, 3e-3, 3e-2), ("sst2", 10, 6e-3, 1e-2)])
def test_vera_large_is_its_table_8(large, task, epochs, head, lr):
    check(settings(large, "vera", task), lr=lr, lr_head=head, epochs=epochs, batch_size=128, r=256)


def test_bitfit_is_its_repository_recipe(base):
    for task in base["tasks"]:  # run_glue.py: --learning-rate 1e-3 (README), --epochs 16, --batch-size 8
        check(settings(base, "bitfit", task), lr=1e-3, lr_head=1e-3, batch_size=8, epochs=16, weight_decay=0.0)


@pytest.mark.parametrize("cfg_name", ["base", "large"])
def test_full_ft_is_roberta_fairseq_recipe(cfg_name, request):
    cfg = request.getfixturevalue(cfg_name)  # README.glue.md: --lr 2e-05 / 1e-05, --max-sentences 16 / 32, 10 epochs
    check(settings(cfg, "full_ft", "rte"), lr=2e-5, batch_size=16, epochs=10, weight_decay=0.1)
    check(settings(cfg, "full_ft", "sst2"), lr=1e-5, batch_size=32, epochs=10)
    check(settings(cfg, "full_ft", "stsb"), lr=2e-5, batch_size=16)


def test_adapters_are_lora_table_9_dagger_rows(large):
    check(settings(large, "pfeiffer", "sst2"), lr=3e-4, batch_size=32, epochs=20, r=16)  # Adpt P (0.8M)†
    check(settings(large, "pfeiffer", "qnli"), epochs=10)
    check(settings(large, "houlsby", "sst2"), lr=3e-4, batch_size=32, epochs=5, r=8)    # Adpt H (0.8M)†
    check(settings(large, "houlsby", "rte"), epochs=20)


def test_lfma_takes_fourierft_recipe_with_its_scale_as_alpha(base, large):
    check(settings(base, "lfma_0.0016", "cola"), lr=0.12, lr_head=0.008, epochs=100, batch_size=32, alpha=49, ratio=0.0016)
    check(settings(base, "lfma_0.0001", "qnli"), lr=0.1, alpha=29)
    check(settings(large, "lfma_0.0005", "sst2"), lr=0.043, lr_head=0.001, epochs=10, alpha=99)


def test_fora_runs_table_6_unless_tuned(base, large):
    check(settings(base, "fora", "sst2"), lr=2e-2, lr_head=6e-4, batch_size=128, epochs=50, r=32, n=500)
    check(settings(base, "fora_n250", "stsb"), lr=2e-2, lr_head=2e-4, epochs=90, r=256, n=250)
    check(settings(large, "fora", "qnli"), lr=2e-2, lr_head=4e-4, batch_size=8, epochs=30, r=32)
    for cfg in (base, large):
        assert all(tune_spec(cfg, v) is None for v in cfg["methods"])  # tuning is off by default
        spec = tune_spec(cfg, "fora", switch=True)  # FoRA §4.1: random search over learning rates and rank
        assert {"lr", "hparams.r"} <= set(spec["space"]) and spec["fair"] is False
        assert tune_spec(cfg, "lora", switch=True) is None  # baselines keep their published recipes


@pytest.mark.parametrize("cfg_name", ["base", "large"])
def test_every_hparams_dict_builds_and_tables_say_what_differs(cfg_name, request):
    cfg = request.getfixturevalue(cfg_name)
    for variant, m in cfg["methods"].items():
        for task in cfg["tasks"]:
            build_config(m["method"], settings(cfg, variant, task).hparams)
    validate_tuning(cfg, cfg["_path"])
    notes = " ".join(cfg["notes"])
    assert "MNLI" in notes or cfg_name == "large"  # LoRA's MRPC/RTE/STS-B start (base scripts) is not reproduced
    assert "max length" in notes.lower()  # one max length per table: the recipes' 128/256 are named


def method_blocks(path):
    """{variant: its text} of the ``methods:`` section of a config file (comments included)."""
    lines = path.read_text().splitlines()
    start = lines.index("methods:")
    blocks, name = {}, None
    for line in lines[start + 1:]:
        if line.startswith("  ") and not line.startswith("   ") and line.strip().endswith(":") and not line.lstrip().startswith("#"):
            name = line.strip()[:-1]
            blocks[name] = ""
        elif name:
            blocks[name] += line + "\n"
    return blocks


@pytest.mark.parametrize("table", ["glue_base", "glue_large"])
def test_no_baseline_recipe_value_is_marked_chosen(table):
    blocks = method_blocks(ROOT / "config" / f"{table}.yaml")
    baselines = [b for b in ("full_ft", "bitfit", "lora", "vera", "fourierft", "pfeiffer", "houlsby") if b in blocks]
    assert len(baselines) >= 5
    for name in baselines:
        assert "chosen" not in blocks[name].replace("(chosen: the table's)", "").replace("(the table's: chosen)", ""), name
