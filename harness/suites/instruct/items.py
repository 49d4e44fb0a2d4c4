"""Items in LLM-Adapters' format (instruction, input, output, answer, plus our set and item_id): the
one place they are built (:func:`math_item` for every math route: the hub, a ``save_to_disk`` or
parquet copy, LLM-Adapters' JSON, the mini stand-in) and turned into a ``datasets.Dataset``
(:func:`records_dataset`, answers coerced and texts checked by :mod:`harness.core.labels`), so that
the prompt protocol never depends on where the data came from."""
from __future__ import annotations

from harness.core.errors import DataError
from harness.core.labels import answer_text, check_texts
from harness.suites.instruct.prompts import GSM8K_SUFFIX
from harness.suites.instruct.scoring import FINAL_ANSWER

__all__ = ["math_item", "records_dataset"]


def math_item(question: str, rationale: str, answer, eval_set: str, item_id: str, where: str = "") -> dict:
    """One math item with FoRA's template (Appendix C): the question followed by GSM8K_SUFFIX, the
    response ending "The final answer is: <answer>" (after the rationale, when there is one).
    Idempotent: a question already ending with the suffix or a response already holding the
    final-answer line is kept as it is."""
    label = answer_text(answer, eval_set, where or item_id)
    instruction = question if question.endswith(GSM8K_SUFFIX) else question + GSM8K_SUFFIX
    rationale = (rationale or "").rstrip()
    if FINAL_ANSWER in rationale:
        output = rationale
    else:
        output = f"{rationale}\n{FINAL_ANSWER}{label}" if rationale.strip() else f"{FINAL_ANSWER}{label}"
    return {"instruction": instruction, "input": "", "output": output, "answer": label, "set": eval_set,
            "item_id": item_id}


def records_dataset(rows: list[dict], where: str):
    """The items as a Dataset of strings; every answer coerced (:func:`harness.core.labels.answer_text`:
    lists, numbers, 0), instructions non-empty."""
    from datasets import Dataset

    cols = ("instruction", "input", "output", "answer", "set", "item_id")
    for i, r in enumerate(rows[:1] + rows[-1:]):
        missing = [c for c in ("instruction", "output", "answer") if c not in r]
        if missing:
            raise DataError(f"{where}: item {i} lacks {missing}: items need LLM-Adapters' fields "
                            "instruction, input, output, answer")
    data = {c: [str(r.get(c, "") or "") for r in rows] for c in cols if c != "answer"}
    data["answer"] = [answer_text(r.get("answer"), r.get("set") or where, f"{where} item {r.get('item_id', i)}")
                      for i, r in enumerate(rows)]
    check_texts(data["instruction"], "instruction", rows[0].get("set", where) if rows else where, where)
    return Dataset.from_dict({c: data[c] for c in cols})
