"""harness/cost.py against hand computations for tiny configs (numbers worked out below from the
architectures' published sizes, not by the code under test)."""
import math

import pytest

from harness import cost
from harness.config import ConfigError

RATE = 312e12 * 0.40  # A100 bf16 peak x the default utilisation


def glue_cfg(**train):
    return {
        "table": "tiny_glue", "suite": "glue", "seeds": [0, 1], "tasks": ["rte"],
        "backbone": {"name": "roberta-base", "target_modules": ["query", "value"]},
        "data": {"max_length": 512}, "train": {"weight_decay": 0.0, **train},
        "methods": {"lora": {"method": "lora", "hparams": {"r": 8}, "defaults": {"lr": 1e-3, "batch_size": 16, "epochs": 3}}},
    }


def test_classification_job_by_hand():
    # RoBERTa-base: 12 blocks of 4 x 768^2 (attention) + 2 x 768 x 3072 (MLP) = 7,077,888 matmul parameters
    block = 4 * 768 * 768 + 2 * 768 * 3072
    assert block == 7_077_888
    fwd = 2 * 12 * block + 2 * 12 * 70 * 768  # RTE: 70 tokens per example
    lora = 12 * 2 * (2 * 8 * (768 + 768))  # LoRA r=8 on query and value, forward multiply-adds x 2
    per_token = 2 * fwd + 3 * lora  # forward + activation gradients, adapter forward + backward
    job = cost.job_cost(glue_cfg(), "lora", "rte", cost.GPUS["a100-80gb"], 0.40, 0.70)
    assert job["flops_per_token"] == pytest.approx(per_token, rel=1e-12)
    assert job["train_tokens"] == 2_490 * 70 * 3
    assert job["train_seconds"] == pytest.approx(2_490 * 70 * 3 * per_token / RATE, rel=1e-12)
    assert job["eval_seconds"] == pytest.approx(3 * 277 * 70 * fwd / RATE, rel=1e-12)
    # gradient checkpointing recomputes one forward
    ckpt = cost.job_cost(glue_cfg(gradient_checkpointing=True), "lora", "rte", cost.GPUS["a100-80gb"], 0.40, 0.70)
    assert ckpt["flops_per_token"] == pytest.approx(per_token + fwd, rel=1e-12)

    table = cost.table_cost(glue_cfg(), cost.GPUS["a100-80gb"])
    assert table["jobs"] == 2
    assert table["gpu_hours"] == pytest.approx(2 * job["seconds"] / 3600)
    assert table["gpu_hours"] == pytest.approx(table["train_gpu_hours"] + table["eval_gpu_hours"])
    assert cost.wall_clock_hours(table, 1) == pytest.approx(table["gpu_hours"])
    assert cost.wall_clock_hours(table, 100) == pytest.approx(table["longest_job_hours"])  # never below one job


def test_generation_is_bounded_by_weight_reads():
    cfg = {
        "table": "tiny_math", "suite": "instruct", "seeds": [0], "tasks": ["math"],
        "backbone": {"name": "llama2-7b", "target_modules": ["q_proj", "v_proj"], "dtype": "bfloat16"},
        "data": {"cutoff_len": 256}, "train": {"gradient_checkpointing": True},
        "generation": {"num_beams": 4, "max_new_tokens": {"math": 256}, "batch_size": 1},
        "methods": {"lora": {"method": "lora", "hparams": {"r": 32}, "defaults": {"lr": 3e-4, "batch_size": 16, "epochs": 3}}},
    }
    # LLaMA2-7B: 32 blocks x (4 x 4096^2 + 3 x 4096 x 11008) + embeddings and LM head 2 x 4096 x 32000
    params = 32 * (4 * 4096**2 + 3 * 4096 * 11008) + 2 * 4096 * 32000
    assert params == 6_738_149_376  # the published 6.74B
    # a decode step reads every bf16 weight once, except the embedding table (one row per token)
    step = 2 * (params - 4096 * 32000) / (2.039e12 * 0.70)
    fwd = 2 * (32 * (4 * 4096**2 + 3 * 4096 * 11008) + 4096 * 32000) + 2 * 32 * 220 * 4096
    prompt = 5_000 * 120 * fwd / RATE
    job = cost.job_cost(cfg, "lora", "math", cost.GPUS["a100-80gb"], 0.40, 0.70)
    assert job["eval_seconds"] == pytest.approx(3 * (5_000 * 256 * step + prompt), rel=1e-12)
    once = cost.job_cost(cfg, "lora", "math", cost.GPUS["a100-80gb"], 0.40, 0.70, generate_once=True)
    assert once["eval_seconds"] == pytest.approx(job["eval_seconds"] / 3, rel=1e-12)
    cfg["generation"]["batch_size"] = 8
    batched = cost.job_cost(cfg, "lora", "math", cost.GPUS["a100-80gb"], 0.40, 0.70)
    assert batched["eval_seconds"] == pytest.approx(3 * (math.ceil(5_000 / 8) * 256 * step + prompt), rel=1e-12)


def test_unknown_gpu_and_task_are_config_errors():
    with pytest.raises(ConfigError, match="a100-80gb"):
        cost.bill({}, "v100", 1)
    cfg = glue_cfg()
    cfg["tasks"] = ["nope"]
    with pytest.raises(ConfigError, match="nope"):
        cost.table_cost(cfg, cost.GPUS["a100-80gb"])


def test_every_paper_table_has_a_bill():
    from harness.config import table_configs

    text, rows = cost.bill(table_configs(), "h100-80gb", 8)
    assert rows[-1]["table"] == "all" and len(rows) == len(table_configs()) + 1
    assert all(r["gpu_hours"] > 0 for r in rows)
    assert rows[-1]["gpu_hours"] == pytest.approx(sum(r["gpu_hours"] for r in rows[:-1]))


def test_cli_analytic_estimate(capsys, tmp_path):
    from harness.cli import main

    out = tmp_path / "bill.txt"
    main(["estimate", "--analytic", "--gpu", "h100-80gb", "--gpus", "4", "--config", "config/math_llama2_7b.yaml",
          "--out", str(out)])
    printed = capsys.readouterr().out
    assert "H100 80GB" in printed and "| math_llama2_7b | 16 |" in printed and "wall-clock h at 4 GPU" in printed
    assert out.read_text().strip() == printed.strip()
    assert (tmp_path / "bill.json").exists()
    with pytest.raises(SystemExit):  # the calibrated mode still needs its measured steps
        main(["estimate", "--config", "config/math_llama2_7b.yaml"])
