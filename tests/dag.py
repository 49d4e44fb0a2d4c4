"""Run the real Snakefile from tests, in a temporary work directory, on the tiny table config."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TINY_CONFIG = ROOT / "tests" / "data" / "tiny_config"


def env() -> dict:
    e = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", PYTHONPATH=str(ROOT))
    e["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{e['PATH']}"
    return e


def tiny_config(tmp: Path, **edits) -> Path:
    """A copy of the tiny table config with top-level keys replaced (``edits``)."""
    import yaml

    out = tmp / "config"
    shutil.copytree(TINY_CONFIG, out, dirs_exist_ok=True)
    cfg = yaml.safe_load((out / "tiny.yaml").read_text())
    cfg.update(edits)
    (out / "tiny.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out


def prep_dir(config_dir: Path, table: str, task: str, scale: str = "mini") -> str:
    """The prepared-data folder of a table's task, as the Snakefile names it (relative to the work directory)."""
    from harness.config import load_table
    from harness.suites import get_suite

    cfg = load_table(Path(config_dir) / f"{table}.yaml", scale)
    return f"data/{scale}/{get_suite(cfg['suite']).prep_id(cfg, task)}/{task}"


def snakemake_cmd(workdir: Path, config_dir: Path, *targets: str, scale: str = "mini", extra: tuple = ()) -> list[str]:
    # targets before --config, which takes every following word as a key=value pair
    return [sys.executable, "-m", "snakemake", *targets, "-s", str(ROOT / "Snakefile"), "--directory", str(workdir),
            "--cores", "2", *extra, "--config", f"scale={scale}", f"config_dir={config_dir}"]


def snakemake(workdir: Path, config_dir: Path, *targets: str, timeout: int = 600, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(snakemake_cmd(workdir, config_dir, *targets, **kw), env=env(), capture_output=True,
                          text=True, timeout=timeout)
