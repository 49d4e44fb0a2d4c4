"""Items in LLM-Adapters' format (instruction, input, output, answer, plus our set and item_id) as a
``datasets.Dataset``: what the paper loaders and the mini builders both produce."""
from __future__ import annotations

from harness.core.errors import DataError

__all__ = ["records_dataset"]


def records_dataset(rows: list[dict], where: str):
    from datasets import Dataset

    cols = ("instruction", "input", "output", "answer", "set", "item_id")
    for i, r in enumerate(rows[:1] + rows[-1:]):
        missing = [c for c in ("instruction", "output", "answer") if c not in r]
        if missing:
            raise DataError(f"{where}: item {i} lacks {missing}: items need LLM-Adapters' fields "
                            "instruction, input, output, answer")
    return Dataset.from_dict({c: [str(r.get(c, "") or "") for r in rows] for c in cols})
