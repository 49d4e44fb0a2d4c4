"""What a run writes: every output folder is ignored by git and documented, and two identical runs
write identical bytes (issue 19, items 8 and 9)."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

from harness.tracking import LOCAL_STORE

ROOT = Path(__file__).resolve().parent.parent
RULE_FILES = [ROOT / "Snakefile", *sorted((ROOT / "rules").glob("*.smk"))]


def output_roots() -> set[str]:
    """The top folder of every path a rule writes: each rule's output and log paths start with it and
    a wildcard or f-string field follows (``"results/{scale}/…"``, ``f"logs/{SCALE}/…"``)."""
    text = "\n".join(p.read_text() for p in RULE_FILES)
    return set(re.findall(r"""f?["']([a-z_]+)/(?:\{|[a-z_]+\.(?:log|csv|html))""", text)) - {"rules"}


def where_things_land() -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split("## Where things land", 1)[1].split("\n## ", 1)[0]


def test_every_output_root_is_ignored_and_documented():
    roots = output_roots() | {LOCAL_STORE}  # mlruns/: tracking writes it from inside a job
    assert {"results", "tables", "figures", "logs", "data", "backbones", "tuning"} <= roots  # the scan sees the rules
    section = where_things_land()
    for root in sorted(roots):
        ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", f"{root}/x"], cwd=ROOT)
        assert ignored.returncode == 0, f"{root}/ is not in .gitignore"
        assert f"`{root}/" in section, f"{root}/ is not under README's 'Where things land'"
