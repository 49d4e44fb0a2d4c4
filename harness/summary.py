"""The report's first screen: per table, who wins each task, which cells are suspect and, at paper
scale, whether each of our cells agrees with the paper's.

Read from a table's CSV (harness/tables.py) and its ``.meta.json``:

* from the CSV: ``failed`` (no seed finished), ``incomplete`` (some did), ``tuned`` (the cell ran
  values a tuning stage chose: ``<task>_tuned``, which names them);
* from the meta: ``cell_flags`` = ``{"<variant>": {"<task>": ["diverged", "inert", ...]}}``, the
  flags other stages put on a cell (docs/CONTRACTS.md lists the known ones; any other string is
  shown as it is). ``<variant>`` is the CSV's ``method`` column (a sweep row's own variant).

Agreement with the paper (:data:`AGREEMENT_RULE`): ``reproduced`` when
|ours - paper| <= 2 x max(our std over seeds, the paper's std when it prints one), ``differs``
otherwise, ``no paper value`` when the paper prints none for the cell; a cell without a number of
ours (failed, incomplete) is not judged. Mini tables are never compared (their paper columns are
empty by construction).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.run_flags import cell_number

REPRODUCED, DIFFERS, NO_PAPER = "reproduced", "differs", "no paper value"
AGREEMENT_RULE = ("reproduced: |ours - paper| <= 2 x max(our sample std over seeds, the paper's std where it "
                  "prints one); differs: otherwise; no paper value: the paper prints none for the cell. With one "
                  "seed and no paper std the tolerance is 0 (only an equal value counts). Cells without a number "
                  "of ours (failed, incomplete) are not judged; mini tables are never compared.")
# the flags a stage may put in a table meta's cell_flags (docs/CONTRACTS.md), and what they mean
KNOWN_FLAGS = {
    "failed": "no seed finished",
    "incomplete": "not every seed finished (the cell shows no number)",
    "diverged": "a seed's loss became NaN/inf or blew up (ended > 4x its start), or its predictions collapsed to "
                "one class while another method beats the baseline (harness.run_flags)",
    "inert": "the adapter carries nothing: switching it off (head kept) changes no prediction, or its "
             "relative change is below 1e-3 (harness.run_flags; the score is the head's)",
    "selected_on_test": "the checkpoint was selected on the split the number is reported on",
    "tuned": "the cell ran values a tuning stage chose",
}
SUSPECT = ("diverged", "inert", "selected_on_test")  # flags that make a best cell's number doubtful


def row_label(row: dict, axes) -> str:
    given = [f"{a}={row[a]}" for a in axes if row.get(a, "") != ""]
    return f"{row.get('label') or row.get('method')} ({', '.join(given)})" if given else (row.get("label") or row["method"])


def cell_flags(row: dict, task: str, meta: dict) -> list[str]:
    """Every flag of one cell: derived from the CSV, then the meta's ``cell_flags`` (no repeats)."""
    flags = []
    if row.get(task) in ("failed", "incomplete"):
        flags.append(row[task])
    if row.get(f"{task}_tuned"):
        flags.append("tuned")
    flags += ((meta.get("cell_flags") or {}).get(row["method"]) or {}).get(task) or []
    return list(dict.fromkeys(flags))


def agreement(row: dict, task: str) -> str | None:
    """The cell's verdict against the paper (:data:`AGREEMENT_RULE`); None when ours has no number."""
    ours = cell_number(row.get(task))
    if ours is None:
        return None
    paper = cell_number(row.get(f"{task}_paper"))
    if paper is None:
        return NO_PAPER
    ours_std = cell_number(row.get(f"{task}_spread")) or 0.0
    paper_std = cell_number(row.get(f"{task}_paper_spread")) or 0.0
    return REPRODUCED if abs(ours - paper) <= 2 * max(ours_std, paper_std) + 1e-9 else DIFFERS


@dataclass
class TableSummary:
    name: str
    title: str
    scale: str
    methods: list[str]                                   # row labels, one per row (sweep rows with their axis values)
    best: dict[str, tuple[list[str], float, list[str]]]  # task -> (labels of the best rows, value, their flags)
    flagged: dict[str, list[str]] = field(default_factory=dict)    # flag -> ["label / task", ...]
    tuned: list[str] = field(default_factory=list)                 # "label / task: the values chosen"
    verdicts: dict[str, list[str]] = field(default_factory=dict)   # verdict -> ["label / task", ...] (paper scale)


def summarize(name: str, rows: list[dict], meta: dict, tasks: list[str]) -> TableSummary:
    """One table's summary from its CSV rows (the baseline row is not a method) and meta."""
    axes = list(meta.get("axes") or [])
    methods = [r for r in rows if r.get("method") != "baseline"]
    scale = meta.get("scale") or (rows[0].get("scale") if rows else "") or "unknown"
    out = TableSummary(name=name, title=meta.get("title", ""), scale=scale,
                       methods=[row_label(r, axes) for r in methods], best={})
    for task in tasks:
        scored = [(v, r) for r in methods if (v := cell_number(r.get(task))) is not None]
        if scored:
            top = max(v for v, _ in scored)
            winners = [r for v, r in scored if v == top]
            flags = sorted({f for r in winners for f in cell_flags(r, task, meta) if f in SUSPECT})
            out.best[task] = ([row_label(r, axes) for r in winners], top, flags)
    for r in methods:
        for task in tasks:
            where = f"{row_label(r, axes)} / {task}"
            for flag in cell_flags(r, task, meta):
                out.flagged.setdefault(flag, []).append(where)
            if r.get(f"{task}_tuned"):
                out.tuned.append(f"{where}: {r[f'{task}_tuned']}")
            verdict = agreement(r, task) if scale == "paper" else None
            if verdict:
                out.verdicts.setdefault(verdict, []).append(where)
    return out
