"""Issue 17, items 2 and 5: every data route (save_to_disk, csv/tsv/json/parquet, hub schema)
validates labels and answers the same way, the formats people have are read (original GLUE files,
uoft-cs/cifar100, GSM8K/MATH save_to_disk and parquet, a column mapping), and what cannot be read
fails with one line naming the task, the place and the config key. Data: tests/paper_fixtures.py."""
from __future__ import annotations

import json

import numpy as np
import pytest
from datasets import ClassLabel, Dataset, DatasetDict, load_from_disk
from paper_fixtures import glue_original_tsv, glue_save_to_disk, gsm8k_hub, llm_adapters_tree, math_hub

from harness.core.errors import DataError
from harness.core.labels import answer_text, check_class_labels, check_regression_targets
from harness.suites import get_suite
from harness.suites.glue.loading import load_glue_dir
from harness.suites.glue.tasks import TASKS as GLUE
from harness.suites.instruct.loaders import load_paper_task
from harness.suites.instruct.prompts import GSM8K_SUFFIX
from harness.suites.instruct.scoring import FINAL_ANSWER, answer_correct
from harness.suites.instruct.tasks import TASKS as INSTRUCT


@pytest.fixture(scope="module")
def glue_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("glue")
    return glue_save_to_disk(root / "glue"), glue_original_tsv(root / "glue_data")


# ------------------------------------------------------------------ answers and labels (core)
@pytest.mark.parametrize("value,text", [([2304.0], "2304"), (800.0, "800"), ("576.0", "576.0"), (0, "0"),
                                        (0.5, "0.5"), ([[72]], "72"), (" true ", "true"), (False, "false")])
def test_answers_are_coerced_whatever_their_json_encoding(value, text):
    assert answer_text(value, "gsm8k", "test.json") == text


@pytest.mark.parametrize("value", [None, "", "  ", [1, 2], [], float("nan")])
def test_unreadable_answers_raise_one_line_naming_task_place_and_key(value):
    with pytest.raises(DataError, match=r"^gsm8k: f\.json .*`data\.data_dir`") as err:
        answer_text(value, "gsm8k", "f.json")
    assert "\n" not in str(err.value)


def test_label_checks():
    assert check_class_labels([0, 1, 1.0], 2, "rte", "x").tolist() == [0, 1, 1]
    with pytest.raises(DataError, match="label -1.*GLUE test split"):
        check_class_labels([0, -1], 2, "sst2", "x")
    with pytest.raises(DataError, match=r"integers 0\.\.1.*\[2\.0\]"):
        check_class_labels([0, 2], 2, "sst2", "x")
    with pytest.raises(DataError, match="NaN or infinite"):
        check_regression_targets([1.0, float("nan")], "stsb", "x")


# ------------------------------------------------------------------ GLUE: save_to_disk and files alike
def _mutated(src, dst, task, split, column, values, feature=None):
    dd = load_from_disk(str(src / task))
    ds = dd[split].remove_columns(column).add_column(column, values)
    dd[split] = ds.cast_column(column, feature) if feature is not None else ds
    dd.save_to_disk(str(dst / task))
    return dst


def test_glue_save_to_disk_reads_and_keeps_the_class_names(glue_dirs):
    dd, recipe = load_glue_dir(GLUE["rte"], glue_dirs[0])
    assert recipe["format"] == "save_to_disk" and dd["validation"].features["label"].names == ["entailment", "not_entailment"]


def test_glue_test_split_as_validation_is_refused_on_every_route(glue_dirs, tmp_path):
    # save_to_disk whose validation is the hub's test split (labels -1): was silently accuracy 0.00
    dd = load_from_disk(str(glue_dirs[0] / "sst2"))
    DatasetDict({"train": dd["train"], "validation": dd["test"]}).save_to_disk(str(tmp_path / "std" / "sst2"))
    with pytest.raises(DataError, match=r"^sst2: .*split 'validation'.* label -1 .*GLUE test split.*data\.data_dir"):
        load_glue_dir(GLUE["sst2"], tmp_path / "std")
    (tmp_path / "csv").mkdir()
    dd["train"].to_csv(str(tmp_path / "csv" / "train.csv"))
    dd["test"].to_csv(str(tmp_path / "csv" / "validation.csv"))
    with pytest.raises(DataError, match=r"^sst2: data file .*validation\.csv has label -1"):
        load_glue_dir(GLUE["sst2"], tmp_path / "csv")


def test_glue_out_of_range_label_and_nan_target_fail_in_prep(glue_dirs, tmp_path):
    from datasets import Value

    bad = _mutated(glue_dirs[0], tmp_path, "sst2", "train", "label", [5] + [0] * 15, Value("int64"))
    with pytest.raises(DataError, match=r"^sst2: .*labels must be integers 0\.\.1, found \[5\.0\]"):
        load_glue_dir(GLUE["sst2"], bad)
    bad = _mutated(glue_dirs[0], tmp_path, "stsb", "validation", "label", [float("nan")] + [1.0] * 7, Value("float32"))
    with pytest.raises(DataError, match=r"^stsb: .*'validation'.* NaN or infinite \(first at row 0\)"):
        load_glue_dir(GLUE["stsb"], bad)
    bad = _mutated(glue_dirs[0], tmp_path, "rte", "train", "sentence1", [""] + ["x"] * 15)
    with pytest.raises(DataError, match=r"^rte: .*column 'sentence1' is empty"):
        load_glue_dir(GLUE["rte"], bad)


@pytest.mark.parametrize("task", ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"])
def test_original_glue_distribution_files_are_read(glue_dirs, task):
    """download_glue_data.py's tree: CoLA/ (no header), SST-2/, MRPC/ (#1 String...), STS-B/ (score),
    MNLI/ (gold_label, dev_matched), RTE/ and QNLI/ (string labels); same ids as nyu-mll/glue."""
    spec = GLUE[task]
    dd, recipe = load_glue_dir(spec, glue_dirs[1])
    assert recipe["files"]["train"].endswith(f"{spec.folder}/train.tsv")
    assert dd["train"].column_names[:len(spec.text_keys)] == list(spec.text_keys) and len(dd["train"]) == 16
    assert len(dd["validation"]) == 8
    labels = np.asarray(dd["train"]["label"])
    if spec.is_regression:
        assert dd["train"].features["label"].dtype == "float32" and np.isfinite(labels).all()
    else:
        assert dd["train"].features["label"].names == list(spec.label_names)
        assert labels.tolist() == [i % spec.num_labels for i in range(16)]  # the fixture's labels, names mapped to ids


def test_unknown_string_label_names_the_allowed_names(glue_dirs, tmp_path):
    root = tmp_path / "RTE"
    root.mkdir()
    for f in ("train.tsv", "dev.tsv"):
        text = (glue_dirs[1] / "RTE" / f).read_text().replace("not_entailment", "contradiction")
        (root / f).write_text(text)
    with pytest.raises(DataError, match=r"^rte: data file .*train\.tsv has label 'contradiction'.*\['entailment', 'not_entailment'\]"):
        load_glue_dir(GLUE["rte"], tmp_path)


def test_glue_column_mapping_from_the_config(glue_dirs, tmp_path):
    dd = load_from_disk(str(glue_dirs[0] / "sst2")).rename_columns({"sentence": "text", "label": "y"})
    dd.save_to_disk(str(tmp_path / "sst2"))
    with pytest.raises(DataError, match=r"lacks column\(s\) \['sentence', 'label'\].*`data\.columns\.sst2`"):
        load_glue_dir(GLUE["sst2"], tmp_path)
    out, _ = load_glue_dir(GLUE["sst2"], tmp_path, {"sentence": "text", "label": "y"})
    assert out["train"].column_names[:2] == ["sentence", "label"]
    with pytest.raises(DataError, match=r"no column\(s\) \['txt'\] named by `data\.columns\.sst2`"):
        load_glue_dir(GLUE["sst2"], tmp_path, {"sentence": "txt"})


# ------------------------------------------------------------------ vision
def _images(n, key="image", label="label", classes=10, labels=None):
    from PIL import Image

    ds = Dataset.from_dict({key: [Image.new("RGB", (8, 8))] * n, label: labels if labels is not None else [i % 3 for i in range(n)]})
    return ds.cast_column(label, ClassLabel(num_classes=classes)) if labels is None else ds


def _vision_cfg(data_dir, columns=None):
    return {"data": {"data_dir": str(data_dir), "image_size": 32, "columns": columns or {}}}


def test_cifar100_from_uoft_cs_is_read(tmp_path):
    from paper_fixtures import cifar100_save_to_disk

    root = cifar100_save_to_disk(tmp_path)
    suite = get_suite("vision")
    raw, recipe = suite.load_raw(suite.task("cifar100"), _vision_cfg(root), 0)
    assert {"image", "label"} <= set(raw["train"].column_names)
    assert raw["train"].features["label"].num_classes == 100  # fine_label, not coarse_label (20)


def test_vision_column_mapping_and_bad_labels(tmp_path):
    suite = get_suite("vision")
    DatasetDict({"train": _images(30, "picture", "cls"), "test": _images(9, "picture", "cls")}).save_to_disk(
        str(tmp_path / "cifar10"))
    with pytest.raises(DataError, match=r"lacks column\(s\) \['image', 'label'\].*`data\.columns\.cifar10`"):
        suite.load_raw(suite.task("cifar10"), _vision_cfg(tmp_path), 0)
    raw, _ = suite.load_raw(suite.task("cifar10"), _vision_cfg(tmp_path, {"cifar10": {"image": "picture", "label": "cls"}}), 0)
    assert {"image", "label"} <= set(raw["train"].column_names)
    DatasetDict({"train": _images(30, classes=37), "test": _images(3, labels=[0, -1, 1])}).save_to_disk(str(tmp_path / "pets"))
    with pytest.raises(DataError, match=r"^pets: .*split 'test'.* label -1"):
        suite.load_raw(suite.task("pets"), _vision_cfg(tmp_path), 0)


# ------------------------------------------------------------------ instruct
@pytest.fixture(scope="module")
def math_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("math")
    gsm8k_hub(root / "hub")
    math_hub(root / "hub")
    return root / "hub" / "save_to_disk", root / "hub" / "parquet", llm_adapters_tree(root / "LLM-Adapters")


@pytest.mark.parametrize("task", ["gsm8k", "math"])
@pytest.mark.parametrize("route", [0, 1])  # save_to_disk, hub parquet files
def test_math_hub_copies_through_data_dir(math_dirs, task, route):
    dd, recipe = load_paper_task(INSTRUCT[task], str(math_dirs[route]))
    assert recipe["kind"] == "data_dir" and (len(dd["train"]), len(dd["validation"])) == (8, 4)
    item = dd["validation"][0]
    assert item["instruction"].endswith(GSM8K_SUFFIX) and item["answer"] == ("72" if task == "gsm8k" else "5")
    assert item["output"].endswith(f"{FINAL_ANSWER}{item['answer']}")
    assert answer_correct(task, item["output"], item["answer"])


def test_gsm8k_zero_and_thousands_answers_survive(math_dirs):
    dd, _ = load_paper_task(INSTRUCT["gsm8k"], str(math_dirs[0]))
    assert set(dd["train"]["answer"]) == {"72", "10", "2304", "0"}


def test_llm_adapters_math_json_gets_the_same_prompt_as_the_hub_route(math_dirs, tmp_path):
    """dataset/gsm8k/test.json answers as lists [2304.0], floats, strings and 0 all score; the
    prompt is the hub route's (suffix, final-answer line)."""
    items = json.loads((math_dirs[2] / "dataset" / "gsm8k" / "test.json").read_text())
    (tmp_path / "gsm8k").mkdir()
    for name in ("train.json", "test.json"):
        (tmp_path / "gsm8k" / name).write_text(json.dumps(items))
    dd, _ = load_paper_task(INSTRUCT["gsm8k"], str(tmp_path))
    assert dd["validation"]["answer"] == ["2304", "800", "576.0", "0", "72", "10.0"]
    hub, _ = load_paper_task(INSTRUCT["gsm8k"], str(math_dirs[0]))
    for ds in (dd, hub):
        assert all(i.endswith(GSM8K_SUFFIX) for i in ds["validation"]["instruction"])
        assert all(FINAL_ANSWER in o for o in ds["validation"]["output"])
    for it in dd["validation"]:
        assert answer_correct("gsm8k", f"so {it['answer']}.\n{FINAL_ANSWER}{it['answer']}", it["answer"])


def test_llm_adapters_clone_has_no_math_training_set_and_says_so(math_dirs):
    with pytest.raises(DataError, match=r"no gsm8k train file.*save_to_disk.*hf download openai/gsm8k.*LLM-Adapters ships only"):
        load_paper_task(INSTRUCT["gsm8k"], str(math_dirs[2]))


def test_commonsense_clone_reads_and_unreadable_answers_fail(math_dirs, tmp_path):
    dd, _ = load_paper_task(INSTRUCT["commonsense170k"], str(math_dirs[2]))
    assert len(dd["validation"]) == 32 and "" not in dd["validation"]["answer"]
    import shutil

    clone = tmp_path / "clone"
    shutil.copytree(math_dirs[2], clone)
    path = clone / "dataset" / "boolq" / "test.json"
    items = json.loads(path.read_text())
    items[1]["answer"] = None
    path.write_text(json.dumps(items))
    with pytest.raises(DataError, match=r"^boolq: .*boolq/test\.json item 1 has an answer that cannot be read as one value: None.*`data\.data_dir`"):
        load_paper_task(INSTRUCT["commonsense170k"], str(clone))


def test_math_column_mapping(math_dirs, tmp_path):
    dd = load_from_disk(str(math_dirs[0] / "gsm8k")).rename_columns({"question": "q"})
    dd.save_to_disk(str(tmp_path / "gsm8k"))
    with pytest.raises(DataError, match=r"lacks column\(s\) \['question'\].*`data\.columns\.gsm8k`"):
        load_paper_task(INSTRUCT["gsm8k"], str(tmp_path))
    out, _ = load_paper_task(INSTRUCT["gsm8k"], str(tmp_path), {"question": "q"})
    assert len(out["train"]) == 8
