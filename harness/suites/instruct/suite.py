"""The ``instruct`` suite: instruction tuning of a causal LM, scored by generating answers and
extracting them as LLM-Adapters did (FoRA Tables 2-3 and DoRA followed its protocol).

Tasks (one training run per (method, task, seed); the task's 'validation' split is what is scored):

  gsm8k            train on GSM8K train, score GSM8K test on the final number          FoRA Table 2
  math             train on MATH train, score MATH test on the final answer            FoRA Table 2
  commonsense170k  train on LLM-Adapters' commonsense_170k.json once, score eight sets FoRA Table 3
                   (boolq piqa siqa hellaswag winogrande arc_e arc_c obqa); the metric is the mean of
                   the eight per-set accuracies (the papers' "Avg." column), per-set scores are saved
  asdiv, commonsense_mini   the mini stand-ins (:mod:`harness.suites.instruct.mini`)

How a task maps onto the shared loop: prep loads the task's training items ('train') and the items
of every set it is scored on ('validation', each item tagged with its ``set``), subsamples both
stratified by set, tokenizes the training text once and keeps the evaluation prompts as text, then
generates once with the untrained backbone (the table's floor, :meth:`InstructSuite.baseline`).
The loop trains once per (method, task, seed); :meth:`InstructSuite.evaluate` generates on the
validation items and returns the metric (the mean of the per-set accuracies) and per-item arrays
(``predictions.npz``: item_ids, sets, labels, outputs, extracted, correct), from which
:meth:`InstructSuite.score` and :func:`per_set_scores` recompute the metric and the per-set columns.

Every item is in LLM-Adapters' format: ``instruction`` (options and the "Answer format: ..." line
inside it), ``input`` (empty), ``output`` (the training response, e.g. "the correct answer is
true"), ``answer`` (the label). Training text is LLM-Adapters' ``finetune.py`` Alpaca template
with the output appended; evaluation prompts are the copy in ``commonsense_evaluate.py`` /
``evaluate.py``, whose whitespace differs (both reproduced byte for byte below).

Training (LLM-Adapters ``finetune.py``): tokenized once in prep, truncated to ``cutoff_len``
(256), EOS appended when there is room, loss on the prompt too (``train_on_inputs=True``);
batches are right-padded with an attention mask and labels -100 on padding only.

Evaluation runs through lm-evaluation-harness (our task YAMLs in ``lm_eval_tasks/``:
``generate_until``, regex filter + take_first, exact match; numeric tolerance for math) on the
in-memory model (``HFLM(pretrained=model)``). Two lm-eval behaviours are designed around:
its string stop criterion assumes one row per request and, with beam search (rows = requests x
beams), stops the whole batch when the first rows end, which makes answers depend on the batch
(:class:`ProtocolHFLM` leaves stopping to ``generate``'s own EOS handling when beams > 1 and cuts
at the stop strings afterwards, as LLM-Adapters' ``split('### Response:')[1]`` did); and
``simple_evaluate`` reseeds the global RNGs (we pass no seeds and restore the RNG states, so a
per-epoch evaluation does not change the training run). Generation is always left-padded with an
attention mask (LLM-Adapters issue #61: batched generation without one corrupts answers); its batch
is ``generation.batch_size`` (1, LLM-Adapters' strict protocol, unless a config sets it; the evaluation
loader's batch, ``train.eval_batch_size``, only chunks the item list and changes nothing).
Log-likelihood multiple choice is a different protocol and is never used here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.core.errors import DataError
from harness.models import load_pretrained, load_tokenizer
from harness.suites.base import Selection, Suite, column_mapping, data_size, reported_split
from harness.suites.instruct.lm_eval_bridge import generate_with_lm_eval
from harness.suites.instruct.loaders import load_paper_task
from harness.suites.instruct.prompts import eval_prompt, train_text
from harness.suites.instruct.scoring import answer_correct, chance_scores, extracted, per_set_scores, strict_scores
from harness.suites.instruct.tasks import TASKS, InstructTask

__all__ = ["EvalCollator", "InstructSuite", "TrainCollator", "cutoff_len", "generation_settings"]

DTYPES = ("float32", "bfloat16", "float16")
VAL_SET_SIZE = 120  # LLM-Adapters README's finetune.py commands: --val_set_size 120 (the script's default is 2000)


@dataclass
class EvalCollator:
    """The evaluation 'collate': batches stay lists of items (prompt, answer, set, item_id); it
    carries what :meth:`InstructSuite.evaluate` needs besides the loader: the tokenizer and the
    generation settings (the seam gives evaluate no config)."""

    tokenizer: Any
    generation: dict

    def __call__(self, rows: list[dict]) -> list[dict]:
        return [{k: r[k] for k in ("prompt", "answer", "set", "item_id")} for r in rows]


def generation_settings(spec: InstructTask, cfg: dict) -> dict:
    """num_beams / max_new_tokens: the paper's (LLM-Adapters) unless ``generation`` overrides them
    (a number, or a number per task); ``batch_size``: ``generation.batch_size``, the one key that sets
    the generation batch (default 1, LLM-Adapters' strict protocol; larger batches are left-padded
    with an attention mask, equality measured in benchmarks/README.md); recorded with every evaluation."""
    gen = cfg.get("generation") or {}

    def pick(key: str, default):
        value = gen.get(key, default)
        return value.get(spec.name, default) if isinstance(value, dict) else value

    out = {"num_beams": int(pick("num_beams", spec.num_beams)),
           "max_new_tokens": int(pick("max_new_tokens", spec.max_new_tokens)), "do_sample": False}
    out["batch_size"] = int(gen.get("batch_size", 1))
    out["paper"] = {"num_beams": spec.num_beams, "max_new_tokens": spec.max_new_tokens, "batch_size": 1}
    return out


class InstructSuite(Suite):
    """Causal-LM instruction tuning scored by generation (LLM-Adapters' protocol)."""

    name = "instruct"
    model_class = "AutoModelForCausalLM"
    model_types = ("llama",)
    tasks = TASKS
    baseline_label = "untrained model (no training)"

    def __init__(self) -> None:
        self._prep_context: tuple[dict, str] | None = None

    # ------------------------------------------------------------ prep
    def prep_name(self, cfg: dict, task: str) -> str:
        spec = self.task(task)
        sizes = [data_size(cfg, k, task) or "all" for k in ("max_train", "max_eval")]
        gen = generation_settings(spec, cfg)
        baseline = "-g{num_beams}x{max_new_tokens}".format(**gen) if (cfg.get("generation") or {}).get("baseline", True) else ""
        return f"{cfg['backbone']['name']}-C{cutoff_len(cfg)}-{sizes[0]}-{sizes[1]}{baseline}"

    def prep_identity(self, cfg: dict, task: str) -> dict:
        """The shared identity, and what the untrained-model baseline generated in prep reads: the
        model's dtype and the generation settings."""
        out = super().prep_identity(cfg, task)
        if (cfg.get("generation") or {}).get("baseline", True):
            out["baseline"] = {"dtype": (cfg.get("backbone") or {}).get("dtype", "float32"),
                               "generation": generation_settings(self.task(task), cfg)}
        return out

    def load_raw(self, spec: InstructTask, cfg: dict, seed: int):
        """Mini tasks: built from their package's files (``seed`` picks the split). Paper tasks:
        ``data.data_dir`` when set (LLM-Adapters' JSON files), else the hub (math tasks only;
        LLM-Adapters distributes the commonsense files through GitHub, not the hub)."""
        if spec.build is not None:
            return spec.build(seed)
        return load_paper_task(spec, cfg["data"].get("data_dir"), column_mapping(cfg, spec.name))

    def label_key(self, spec: InstructTask) -> str:
        return "set"

    def selection(self, spec: InstructTask, cfg: dict) -> Selection:
        """LLM-Adapters ``finetune.py`` (FoRA §4.2 follows it; DoRA's scripts the same): ``val_set_size``
        (120) items held out of the training data, ``eval_loss`` there every epoch,
        ``load_best_model_at_end``; the test sets are generated on once, at that checkpoint.
        Math tasks generate on test after every epoch as well: FoRA Table 2's "Extended" column
        reports "the best results" over three epochs (§4.2), a selection on test the tables label."""
        held_out = (cfg.get("data") or {}).get("held_out", VAL_SET_SIZE)
        source = (f"loss on {held_out} training items held out (seeded): LLM-Adapters finetune.py --val_set_size 120, "
                  "eval_loss, load_best_model_at_end (github:AGI-Edgerunners/LLM-Adapters; it evaluates every eval_step "
                  "= 200 steps, here every epoch)")
        if spec.kind == "math":
            return Selection(select_on="loss", test="every_epoch", held_out=held_out,
                             text=f"epoch selected on the {source}; the test set is scored after every epoch, and a run "
                                  "of more than one epoch also records its best epoch on test (FoRA §4.2 'reporting the best "
                                  "results': the 'Extended' column, selected on test)")
        return Selection(select_on="loss", test="once", held_out=held_out,
                         text=f"epoch selected on the {source}; the test sets generated on once, at that epoch")

    def strata(self, spec: InstructTask, labels: np.ndarray) -> np.ndarray | None:
        """Subsampling strata: the evaluation set (commonsense: each set keeps its share, so
        equal-sized evaluation pools give equal per-set counts when max_eval is a multiple of the
        number of sets); math: uniform."""
        if spec.kind == "math":
            return None
        return np.unique(np.asarray(labels).astype(str), return_inverse=True)[1]

    def preprocess(self, spec: InstructTask, raw, cfg: dict, backbone_path: str):
        """train: input_ids/attention_mask of the training text (LLM-Adapters' tokenize(): truncated
        to cutoff_len, EOS appended if there is room); validation: the evaluation prompt and label.
        ``labels`` holds the answer string in both splits (the collator makes the token labels)."""
        from datasets import DatasetDict

        tok = load_tokenizer(backbone_path)
        cut = cutoff_len(cfg)
        self._prep_context = (cfg, backbone_path)

        def encode(batch: dict) -> dict:
            texts = [train_text(i, o, x) for i, o, x in zip(batch["instruction"], batch["output"], batch["input"])]
            ids = tok(texts, truncation=True, max_length=cut, padding=False)["input_ids"]
            out = []
            for seq in ids:
                seq = list(seq)
                if seq and seq[-1] != tok.eos_token_id and len(seq) < cut:
                    seq.append(tok.eos_token_id)
                out.append(seq)
            return {"input_ids": out, "labels": batch["answer"], "set": batch["set"], "item_id": batch["item_id"]}

        def prompts(batch: dict) -> dict:
            return {"prompt": [eval_prompt(i, x) for i, x in zip(batch["instruction"], batch["input"])],
                    "answer": batch["answer"], "labels": batch["answer"], "set": batch["set"], "item_id": batch["item_id"]}

        # 'validation' held out of train (prep's carve) is tokenized as training text: its loss selects
        # the epoch; 'test' (the task's evaluation sets) keeps the prompts to generate on
        held_out = "test" in raw
        out = DatasetDict({split: ds.map(encode if split == "train" or (split == "validation" and held_out) else prompts,
                                         batched=True, remove_columns=ds.column_names, keep_in_memory=True)
                           for split, ds in raw.items()})
        train = out["train"]
        lengths = np.array([len(x) for x in train["input_ids"]])
        eval_sets = out[reported_split(out)]["set"]
        return out, {
            "tokenizer": getattr(tok, "name_or_path", type(tok).__name__),
            "cutoff_len": cut,
            "train_on_inputs": True,
            "templates": {"train": "LLM-Adapters finetune.py generate_prompt",
                          "eval": "LLM-Adapters commonsense_evaluate.py / evaluate.py generate_prompt"},
            "tokens": {"train": {"mean": float(lengths.mean()), "max": int(lengths.max()),
                                 "n_at_cutoff": int((lengths >= cut).sum())}},
            "eval_sets": {s: eval_sets.count(s) for s in dict.fromkeys(eval_sets)},
            "train_sets": {s: train["set"].count(s) for s in dict.fromkeys(train["set"])},
            "generation": generation_settings(spec, cfg),
        }

    def baseline(self, spec: InstructTask, prepared) -> dict | None:
        """The untrained backbone, generating on the same evaluation items with the same prompts and
        settings (the floor of the table). Off with ``generation.baseline: false``."""
        if self._prep_context is None:
            raise RuntimeError("InstructSuite.baseline needs preprocess() first (it reads the backbone and settings)")
        cfg, backbone_path = self._prep_context
        if not (cfg.get("generation") or {}).get("baseline", True):
            return None
        import torch
        from torch.utils.data import DataLoader

        model = self.load_model(spec, cfg, backbone_path)
        # the loader hands over lists of items; generation.batch_size is the generation batch
        loader = DataLoader(prepared[reported_split(prepared)], batch_size=64, shuffle=False,
                            collate_fn=self.collate(spec, cfg, backbone_path, train=False))
        model.to("cuda" if torch.cuda.is_available() else "cpu")
        value, saved = self.evaluate(model, loader, spec, model.device)
        del model
        scored = prepared[reported_split(prepared)]
        chance = chance_scores(scored["set"], scored["prompt"])
        return {"rule": "untrained backbone, same prompts, generation settings and answer extraction", "value": value,
                "per_set": per_set_scores(saved), "extra_metrics": strict_scores(saved),
                "generation": loader.collate_fn.generation,
                "no_answer": int(sum(not e for e in saved["extracted"].tolist())),
                "chance": {"rule": "uniform guess among the item's options (0 for math)",
                           "value": float(np.mean(list(chance.values()))), "per_set": chance}}

    # ------------------------------------------------------------ train
    def load_model(self, spec: InstructTask, cfg: dict, backbone_path: str):
        """AutoModelForCausalLM; ``backbone.dtype`` float32 (default) or bfloat16 (paper scale);
        ``train.gradient_checkpointing`` enables it (with input grads, so adapters on frozen layers train)."""
        import torch

        name = (cfg.get("backbone") or {}).get("dtype", "float32")
        if name not in DTYPES:
            raise DataError(f"backbone.dtype {name!r} is not allowed; allowed: {', '.join(DTYPES)}")
        model = load_pretrained(self.model_class, backbone_path, dtype=getattr(torch, name), what="causal LM")
        if (cfg.get("train") or {}).get("gradient_checkpointing"):
            # transformers 5 renames gradient_checkpointing_enable (deprecated) to activation_checkpointing_enable
            (getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable)()
            model.enable_input_require_grads()
            model.config.use_cache = False
        return model

    def collate(self, spec: InstructTask, cfg: dict, backbone_path: str, *, train: bool, generator=None):
        tok = load_tokenizer(backbone_path)
        if not train:
            return EvalCollator(tok, generation_settings(spec, cfg))
        pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        return TrainCollator(pad_id)

    # ------------------------------------------------------------ eval
    def evaluate(self, model, loader, spec: InstructTask, device) -> tuple[float, dict[str, np.ndarray]]:
        """Generate on every validation item through lm-eval and score as LLM-Adapters did; the metric
        is the mean of the per-set accuracies (one set for math). Arrays: item_ids, sets, labels,
        outputs (the generated text, cut at the stop strings), extracted, correct."""
        collator = loader.collate_fn
        if not isinstance(collator, EvalCollator):
            raise TypeError("InstructSuite.evaluate needs the loader built with collate(..., train=False)")
        items = [row for batch in loader for row in batch]
        if not items:
            raise DataError(f"{spec.name}: no evaluation items")
        outputs, _ = generate_with_lm_eval(model, collator.tokenizer, items, collator.generation,
                                           batch_size=collator.generation["batch_size"], device=device)
        saved = {
            "item_ids": np.array([r["item_id"] for r in items]),
            "sets": np.array([r["set"] for r in items]),
            "labels": np.array([r["answer"] for r in items]),
            "outputs": np.array(outputs),
            "extracted": np.array([extracted(r["set"], o) for r, o in zip(items, outputs)]),
            "correct": np.array([answer_correct(r["set"], o, r["answer"]) for r, o in zip(items, outputs)]),
        }
        return self.score(spec, saved), saved

    def score(self, spec: InstructTask, saved: dict[str, np.ndarray]) -> float:
        """Mean over sets of the per-set accuracy (0-100), recomputed from outputs and labels."""
        scores = per_set_scores(saved)
        return float(np.mean(list(scores.values())))

    def extra_metrics(self, spec: InstructTask, saved: dict[str, np.ndarray]) -> dict[str, float]:
        """``math_strict`` when MATH was scored: the strict string match beside its equivalence column."""
        return strict_scores(saved)


def cutoff_len(cfg: dict) -> int:
    """LLM-Adapters' cutoff_len (256): ``data.cutoff_len``, else ``data.max_length``."""
    data = cfg["data"]
    value = data.get("cutoff_len", data.get("max_length"))
    if not isinstance(value, int) or value < 8:
        raise DataError(f"data.cutoff_len must be an integer >= 8 (LLM-Adapters: 256), got {value!r}")
    return value


@dataclass
class TrainCollator:
    """Right-pads input_ids with ``pad_id``, attention mask 1 on tokens; labels = input_ids
    (loss on the prompt too, LLM-Adapters' train_on_inputs=True) and -100 on padding only, found by
    position (the pad id may equal EOS, whose label is kept)."""

    pad_id: int

    def __call__(self, rows: list[dict]) -> dict:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        ids = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            n = len(r["input_ids"])
            ids[i, :n] = torch.as_tensor(r["input_ids"], dtype=torch.long)
            mask[i, :n] = 1
        labels = ids.masked_fill(mask == 0, -100)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}
