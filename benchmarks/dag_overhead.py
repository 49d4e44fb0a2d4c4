"""How much of a Snakemake run's wall-clock the jobs spent in their own timed work (issue 12).

After a run such as the README's quick start, pass the run's wall-clock and the cores it had:

    /usr/bin/time -f %e .venv/bin/snakemake --cores all --profile profiles/mini tables/glue_base.csv
    .venv/bin/python benchmarks/dag_overhead.py --results results/mini/glue_base --wall 515 --cores 2

Each train job's profile.json says how long the job ran from the start of its setup (model load,
adapter, data) to its last written file (``wall_seconds``) and how old its process was when setup
began (``startup_seconds``: interpreter and imports, or a fork of the warm job server). Whatever
the core-seconds of the run (wall x cores) hold beyond the jobs' ``wall_seconds`` is outside the
jobs' timed work: Snakemake parsing and scheduling, job processes starting, prep and table rules,
and cores left idle at the DAG's tail. The report prints that share.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def overhead(results: Path, wall: float, cores: int) -> dict:
    profiles = [json.loads(p.read_text()) for p in sorted(results.glob("*/*/seed*/profile.json"))]
    if not profiles:
        raise SystemExit(f"no */*/seed*/profile.json under {results}")
    timed = sum(p["wall_seconds"] or 0.0 for p in profiles)
    startup = sum(p.get("startup_seconds") or 0.0 for p in profiles)
    budget = wall * cores
    return {"jobs": len(profiles), "wall_seconds": wall, "cores": cores, "core_seconds": budget,
            "jobs_timed_seconds": round(timed, 1), "jobs_startup_seconds": round(startup, 1),
            "outside_timed_work": round(1 - timed / budget, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results", type=Path, required=True, help="results/<scale>/<table>")
    ap.add_argument("--wall", type=float, required=True, help="the run's wall-clock in seconds")
    ap.add_argument("--cores", type=int, required=True, help="the --cores the run had")
    print(json.dumps(overhead(**vars(ap.parse_args())), indent=2))


if __name__ == "__main__":
    main()
