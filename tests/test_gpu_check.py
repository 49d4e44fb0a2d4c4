"""benchmarks/gpu_check.sh runs on CPU (small shapes) and prints its one table (issue 20 §3)."""
import os
import subprocess
import sys

import pytest




@pytest.mark.slow
def test_gpu_check_runs_on_cpu():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(
        [os.path.join(root, "benchmarks", "gpu_check.sh"), "--device", "cpu", "--threads", "1",
         "--methods", "lora r=8", "fora n=500 r=8", "fourier_moe (defaults)"],
        cwd=root, capture_output=True, text=True, timeout=900, env={**os.environ, "PY": sys.executable})
    assert proc.returncode == 0, proc.stderr[-3000:]
    table = [l for l in proc.stdout.splitlines() if l.startswith("| ")]
    assert table[0] == "| part | what | measured | relative |"
    body = table[1:]
    assert sum("train step, roberta-small" in l for l in body) == 3
    assert sum("train step, llama-small-block" in l for l in body) == 3
    assert all("x1.00 time" in l for l in body if "| lora r=8 |" in l)
    gen = [l for l in body if l.startswith("| generation")]
    assert len(gen) == 2 and all("outputs equal" in l and "speedup" in l for l in gen)
    resume = [l for l in body if l.startswith("| kill/resume")]
    assert len(resume) == 1 and "killed: exit -9, checkpoint left: True" in resume[0] and resume[0].endswith("| EQUAL |")
