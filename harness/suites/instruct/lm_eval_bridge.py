"""Generation through lm-evaluation-harness on the in-memory model, with our task YAMLs
(``lm_eval_tasks/``); see the suite's doc for the two lm-eval behaviours designed around."""
from __future__ import annotations

import contextlib
import json
import logging
import random
import tempfile
from pathlib import Path

import numpy as np

from harness.core.errors import DataError

__all__ = ["TASKS_DIR", "generate_with_lm_eval"]

TASKS_DIR = Path(__file__).resolve().parent / "lm_eval_tasks"


def _protocol_hflm_class():
    from lm_eval.models.huggingface import HFLM

    class ProtocolHFLM(HFLM):
        """HFLM whose generation follows LLM-Adapters' (plain ``generate``) whatever the batch.

        lm-eval's stop-string criterion keeps one flag per request but is called on every
        candidate row; with beam search (rows = requests x beams) it ends the whole batch when the
        first rows contain a stop string, so answers depend on the batch. With beams we leave
        stopping to ``generate``'s per-row EOS handling (as LLM-Adapters did) and lm-eval still cuts
        the text at the stop strings afterwards; greedy keeps lm-eval's criterion (each row's tokens
        do not depend on when the batch stops)."""

        def _model_generate(self, context, max_length, stop, **generation_kwargs):
            import torch

            if int(generation_kwargs.get("num_beams", 1) or 1) == 1:
                return super()._model_generate(context, max_length, stop, **generation_kwargs)
            generation_kwargs.pop("temperature", None)
            generation_kwargs.setdefault("do_sample", False)
            with torch.no_grad():
                return self.model.generate(input_ids=context, max_length=max_length,
                                           pad_token_id=self.tokenizer.pad_token_id,
                                           eos_token_id=self.tokenizer.eos_token_id, use_cache=True, **generation_kwargs)

    return ProtocolHFLM


@contextlib.contextmanager
def _kept_rng_and_quiet():
    """lm-eval logs per call and may touch the global RNGs: keep them as they were."""
    import torch

    state = (random.getstate(), np.random.get_state(), torch.get_rng_state(),
             torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)
    loggers = [logging.getLogger(n) for n in ("lm_eval", "lm-eval")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        random.setstate(state[0])
        np.random.set_state(state[1])
        torch.set_rng_state(state[2])
        if state[3] is not None:
            torch.cuda.set_rng_state_all(state[3])
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def generate_with_lm_eval(model, tokenizer, items: list[dict], generation: dict, *, batch_size: int = 1,
                          device=None) -> tuple[list[str], list[bool]]:
    """(generated text per item, lm-eval's verdict per item) for ``items`` (prompt, answer, set,
    item_id), through our task YAMLs on the in-memory ``model``. The model is left in train mode."""
    import lm_eval
    from lm_eval.tasks import TaskManager

    sets = list(dict.fromkeys(r["set"] for r in items))
    unknown = [s for s in sets if not (TASKS_DIR / f"{s}.yaml").is_file()]
    if unknown:
        raise DataError(f"no lm-eval task YAML for set(s) {unknown} in {TASKS_DIR}")
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    gen_kwargs = {"num_beams": generation["num_beams"], "max_gen_toks": generation["max_new_tokens"],
                  "do_sample": False}
    was_training = model.training
    model.eval()
    with tempfile.TemporaryDirectory(prefix="instruct-eval-") as tmp, _kept_rng_and_quiet():
        items_file = Path(tmp) / "items.jsonl"
        items_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in items), encoding="utf-8")
        lm = _protocol_hflm_class()(pretrained=model, tokenizer=tokenizer, batch_size=batch_size,
                                    max_length=_max_length(model, tokenizer))
        tm = TaskManager(include_path=str(TASKS_DIR), include_defaults=False, metadata={"items_file": str(items_file)})
        results = lm_eval.simple_evaluate(
            model=lm, tasks=[f"instruct_{s}" for s in sets], task_manager=tm, bootstrap_iters=0, log_samples=True,
            gen_kwargs=gen_kwargs, random_seed=None, numpy_random_seed=None, torch_random_seed=None,
            apply_chat_template=False, verbosity="ERROR")
    if was_training:
        model.train()
    by_id: dict[str, tuple[str, bool]] = {}
    for s in sets:
        for sample in results["samples"][f"instruct_{s}"]:
            doc = sample["doc"]
            verdict = sample.get("acc", sample.get("exact_match"))
            by_id[doc["item_id"]] = (sample["resps"][0][0], bool(verdict))
    missing = [r["item_id"] for r in items if r["item_id"] not in by_id]
    if missing:
        raise RuntimeError(f"lm-eval returned no output for {len(missing)} item(s), e.g. {missing[0]}")
    return [by_id[r["item_id"]][0] for r in items], [by_id[r["item_id"]][1] for r in items]


def _max_length(model, tokenizer) -> int:
    """Context + generation limit lm-eval works with: the model's position limit."""
    n = getattr(model.config, "max_position_embeddings", None)
    return int(n) if n else int(getattr(tokenizer, "model_max_length", 2048))
