"""The rehearsal's stand-ins (tests/paper_fixtures.py) load with the libraries' own loaders, in the
schema their publishers ship, and the backbones run a forward pass."""
from __future__ import annotations

import csv
import json

import numpy as np
import pandas as pd
import pytest
import torch
from datasets import ClassLabel, load_from_disk
from paper_fixtures import COMMONSENSE_FOLDERS, GLUE_TASKS, VISION_TASKS, paper_fixtures  # noqa: F401 - fixture
from PIL import Image


def test_roberta_is_a_byte_level_mlm_checkpoint(paper_fixtures):
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    path = paper_fixtures["roberta"]
    cfg = AutoConfig.from_pretrained(path)
    assert cfg.architectures == ["RobertaForMaskedLM"] and (cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id) == (1, 0, 2)
    tok = AutoTokenizer.from_pretrained(path)
    enc = tok(["a dog sat on the mat"], ["the film was good"], return_tensors="pt")
    ids = enc["input_ids"][0].tolist()
    assert ids[0] == 0 and ids[-1] == 2 and ids.count(2) == 3  # <s> A </s></s> B </s>
    assert tok.decode(tok("Ünïcode €")["input_ids"], skip_special_tokens=True) == "Ünïcode €"  # byte-level: no <unk>
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=2)
    assert model(**enc).logits.shape == (1, 2)


def test_vit_is_an_in21k_style_backbone(paper_fixtures):
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForImageClassification

    path = paper_fixtures["vit"]
    cfg = AutoConfig.from_pretrained(path)
    assert cfg.architectures == ["ViTModel"] and (cfg.image_size, cfg.patch_size) == (224, 16)
    proc = AutoImageProcessor.from_pretrained(path)
    assert list(proc.image_mean) == [0.5] * 3 and list(proc.image_std) == [0.5] * 3
    pixels = proc(Image.new("RGB", (300, 200)), return_tensors="pt")["pixel_values"]
    assert pixels.shape == (1, 3, 224, 224)
    model = AutoModelForImageClassification.from_pretrained(path, num_labels=37, ignore_mismatched_sizes=True)
    assert model(pixel_values=pixels).logits.shape == (1, 37)


@pytest.mark.parametrize("flavour,bos,eos", [("llama2", "<s>", "</s>"), ("llama3", "<|begin_of_text|>", "<|end_of_text|>")])
def test_llama_tokenizer_has_the_real_special_tokens(paper_fixtures, flavour, bos, eos):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = paper_fixtures[flavour]
    tok = AutoTokenizer.from_pretrained(path)
    assert (tok.bos_token, tok.eos_token, tok.pad_token) == (bos, eos, None)
    ids = tok("The final answer is: 72")["input_ids"]
    assert ids[0] == tok.bos_token_id and tok.decode(ids, skip_special_tokens=True).strip() == "The final answer is: 72"
    model = AutoModelForCausalLM.from_pretrained(path)
    assert model.config.vocab_size == len(tok) and model.config.eos_token_id == tok.eos_token_id
    out = model.generate(torch.tensor([ids]), max_new_tokens=3, do_sample=False, pad_token_id=tok.eos_token_id)
    assert out.shape[1] <= len(ids) + 3


def test_glue_save_to_disk_has_the_hub_schema(paper_fixtures):
    for task in ("sst2", "mrpc", "cola", "qnli", "rte", "stsb"):
        keys, names, evals, tests = GLUE_TASKS[task]
        dd = load_from_disk(str(paper_fixtures["glue"] / task))
        assert set(dd) == {"train", *evals, *tests}
        assert dd["train"].column_names == [*keys, "label", "idx"]
        label = dd["train"].features["label"]
        assert (label.names == names) if names else label.dtype == "float32"
        assert set(dd["test"]["label"]) == {-1}
        assert -1 not in dd["validation"]["label"]


def test_glue_original_files_are_as_download_glue_data_leaves_them(paper_fixtures):
    root = paper_fixtures["glue_tsv"]

    def rows(path):
        with open(path, encoding="utf-8") as f:
            return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))

    cola = rows(root / "CoLA" / "train.tsv")
    assert len(cola[0]) == 4 and cola[0][1] in ("0", "1")  # no header
    assert rows(root / "MRPC" / "dev.tsv")[0] == ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
    assert rows(root / "SST-2" / "train.tsv")[0] == ["sentence", "label"]
    assert set(pd.read_csv(root / "RTE" / "dev.tsv", sep="\t", quoting=csv.QUOTE_NONE)["label"]) == {"entailment", "not_entailment"}
    assert rows(root / "STS-B" / "train.tsv")[0][-3:] == ["sentence1", "sentence2", "score"]
    assert rows(root / "QQP" / "train.tsv")[0] == ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
    assert rows(root / "MNLI" / "dev_matched.tsv")[0][-1] == "gold_label"


def test_image_datasets_have_the_hub_splits_and_columns(paper_fixtures):
    root = paper_fixtures["vision"]
    for task in ("pets", "cars", "dtd", "eurosat", "fgvc", "resisc45"):
        n_classes, splits = VISION_TASKS[task]
        dd = load_from_disk(str(root / task))
        assert tuple(dd) == splits and dd["train"].column_names == ["image", "label"]
        assert dd["train"].features["label"].num_classes == n_classes
        assert {im.size for im in dd["train"]["image"]} >= {(32, 32), (300, 200)}
    cifar = load_from_disk(str(root / "cifar100"))
    assert cifar["train"].column_names == ["img", "fine_label", "coarse_label"]
    assert isinstance(cifar["test"].features["coarse_label"], ClassLabel) and cifar["test"].features["coarse_label"].num_classes == 20


def test_gsm8k_and_math_in_the_hub_schema(paper_fixtures):
    gsm = load_from_disk(str(paper_fixtures["gsm8k"]))
    assert gsm["train"].column_names == ["question", "answer"] and gsm["test"][0]["answer"].endswith("#### 72")
    parquet = pd.read_parquet(paper_fixtures["gsm8k_parquet"] / "main" / "test-00000-of-00001.parquet")
    assert list(parquet.columns) == ["question", "answer"] and len(parquet) == len(gsm["test"])
    math = load_from_disk(str(paper_fixtures["math"]))
    assert math["train"].column_names == ["problem", "level", "type", "solution"]
    assert all("\\boxed{" in s for s in math["test"]["solution"])
    assert len(pd.read_parquet(paper_fixtures["math_parquet"] / "data" / "train-00000-of-00001.parquet")) == len(math["train"])


def test_llm_adapters_tree_is_a_clone_layout(paper_fixtures):
    root = paper_fixtures["llm_adapters"]
    train = json.loads((root / "ft-training_set" / "commonsense_170k.json").read_text())
    assert {tuple(sorted(it)) for it in train} == {("answer", "input", "instruction", "output")}
    for folder in COMMONSENSE_FOLDERS.values():
        items = json.loads((root / "dataset" / folder / "test.json").read_text())
        assert all(it["output"] == f"the correct answer is {it['answer']}" for it in items)
        assert all(it["instruction"].rsplit("Answer format: ", 1)[1].split("/").count(it["answer"]) == 1 for it in items)
    answers = [it["answer"] for it in json.loads((root / "dataset" / "gsm8k" / "test.json").read_text())]
    assert {type(a) for a in answers} == {list, float, str, int} and 0 in answers
    assert float(np.asarray(answers[0]).item()) == 2304.0
