#!/usr/bin/env bash
# The GPU paths in one run of < 5 minutes on one GPU (issue 20 §3): train-step time and peak memory of
# every method relative to LoRA r=8 (bf16 autocast; RoBERTa-base shape and one LLaMA-7B block), batched
# vs batch-1 generation (speedup, equal outputs), kill/resume equality of one tiny job. Prints one table.
#
#   benchmarks/gpu_check.sh                 # cuda if available, else cpu (small shapes: the CI path)
#   benchmarks/gpu_check.sh --device cpu    # any argument goes to benchmarks/gpu_check.py
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
export CUBLAS_WORKSPACE_CONFIG="${CUBLAS_WORKSPACE_CONFIG:-:4096:8}"   # deterministic cuBLAS (docs/gpu.md)
PY="${PY:-.venv/bin/python}"
[ -x "$PY" ] || PY=python
exec "$PY" benchmarks/gpu_check.py "$@"
