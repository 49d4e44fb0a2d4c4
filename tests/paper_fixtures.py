"""Stand-ins for what a user copies onto an offline cluster for a PAPER-scale run (issue 17, "A
rehearsal in the test suite"): tiny random backbones of the real classes saved with
``save_pretrained`` (no download), and a few rows of every dataset in the schema its publisher
ships. Each builder writes into a folder it is given and returns the path(s) a config would name
(``backbone.local_path``, ``data.data_dir``).

Backbones (the classes and config fields the harness reads: ``config/architectures/*.json``,
``harness/models.py``, ``harness/suites/*.py``; hidden 32, 2 layers, so a step takes milliseconds):

* :func:`roberta_backbone` - ``RobertaForMaskedLM`` (FacebookAI/roberta-base is an MLM checkpoint;
  the glue suite loads it with ``AutoModelForSequenceClassification``) with a byte-level BPE
  trained by ``tokenizers`` and wrapped as the Roberta tokenizer: ``<s>``=0, ``<pad>``=1,
  ``</s>``=2, ``<unk>``=3, as roberta-base.
* :func:`vit_backbone` - ``ViTModel`` (google/vit-base-patch16-224-in21k is a ViTModel checkpoint,
  with pooler) at 224x224, patch 16, and a ``ViTImageProcessor`` (mean = std = 0.5, as the hub's).
* :func:`llama_backbone` - ``LlamaForCausalLM``; ``flavour="llama2"``: the Llama tokenizer
  (sentencepiece-style BPE: metaspace, byte fallback) with ``<unk>``=0, ``<s>``=1, ``</s>``=2 and no
  pad token, as meta-llama/Llama-2-7b-hf; ``flavour="llama3"``: a byte-level BPE
  ``PreTrainedTokenizerFast`` with ``<|begin_of_text|>``/``<|end_of_text|>`` and no pad token, as
  meta-llama/Meta-Llama-3-8B, grouped-query attention (kv heads < heads) as Llama 3.

Data (sources cited where each builder is):

* GLUE as ``datasets.load_dataset("nyu-mll/glue", task).save_to_disk`` leaves it
  (:func:`glue_save_to_disk`) and as the original distribution files of ``download_glue_data.py``
  (:func:`glue_original_tsv`).
* Images: FourierFT's ViT datasets as ``save_to_disk`` folders with ``image``/``label``
  (:func:`vision_save_to_disk`) and ``uoft-cs/cifar100`` with ``img``/``fine_label``/``coarse_label``
  (:func:`cifar100_save_to_disk`); PIL images of several sizes, none 224.
* GSM8K and MATH in the hub's schema (``save_to_disk`` and parquet; :func:`gsm8k_hub`,
  :func:`math_hub`) and LLM-Adapters' JSON files (:func:`llm_adapters_tree`: commonsense_170k.json,
  the eight commonsense test sets, ``dataset/gsm8k/test.json`` with the answer encodings its history
  holds).

Rows are few but enough for what prep does at paper scale with ``max_train``/``max_eval`` null:
every class of a split present at least :data:`PER_CLASS` times, so the vision suite's
stratified 10 % hold-out and DTD's 20 % test split are non-empty.
"""
from __future__ import annotations

import csv
import json
import random
import zlib
from pathlib import Path

import numpy as np

__all__ = [
    "COMMONSENSE_FOLDERS", "GLUE_TASKS", "VISION_TASKS", "cifar100_save_to_disk", "glue_original_tsv",
    "glue_save_to_disk", "gsm8k_hub", "llama_backbone", "llm_adapters_tree", "math_hub", "roberta_backbone",
    "vision_save_to_disk", "vit_backbone",
]

TINY = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
PER_CLASS = 3  # images per used class and split: round(0.2 * 3) = 1 for DTD's test split

WORDS = ("the film was good and the acting was bad but the plot of a man who runs to the sea is great . "
         "a dog sat on the mat while two cats ate fish ; it rains in spring , not in june ? "
         "how many apples does tom have if he buys 3 more and eats 2 of 12 at 4 : 30 pm ! "
         "please answer true or false . solution1 solution2 answer1 answer2 answer3 answer4 answer5 "
         "option1 option2 ending1 ending2 ending3 ending4 the correct answer is 0 1 2 3 4 5 6 7 8 9 # $ "
         "\\boxed{ } \\frac { } x + y = z ^ 2 - 1 / 5 * 7 . 25 % final number step by step").split()


def _seed(*parts) -> int:
    """A seed from names, the same in every process (``hash`` of a str is salted per process)."""
    return zlib.crc32(repr(parts).encode())


def _sentences(n: int, seed: int, lo: int = 4, hi: int = 12) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))).capitalize() + "." for _ in range(n)]


CORPUS = _sentences(200, 0) + [
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.",
    "### Instruction:\n### Input:\n### Response:\nThe final answer is: 72",
    "Answer the above question. First think step by step and then answer the final number.",
]


def _save_model(model, tokenizer, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _bpe_vocab(byte_level: bool, specials: list[str], vocab_size: int):
    """(vocab dict, merges list) of a BPE trained on :data:`CORPUS` with ``tokenizers``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE(byte_fallback=not byte_level))
    if byte_level:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:  # sentencepiece-style: "▁" marks a word start; bytes as <0xNN> pieces (Llama 2's byte fallback)
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        tok.decoder = decoders.Metaspace()
        specials = specials + [f"<0x{i:02X}>" for i in range(256)]
        alphabet = []
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, initial_alphabet=alphabet,
                                  show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    data = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in data["merges"]]
    return data["vocab"], merges, tok


def roberta_backbone(out: str | Path, seed: int = 0) -> Path:
    """``RobertaForMaskedLM`` + byte-level BPE Roberta tokenizer, as FacebookAI/roberta-base's files
    (config fields of config/architectures/roberta-base.json: pad 1, bos 0, eos 2, type_vocab_size 1,
    max_position_embeddings 514, layer_norm_eps 1e-5)."""
    import torch
    import transformers as T

    vocab, merges, _ = _bpe_vocab(True, ["<s>", "<pad>", "</s>", "<unk>", "<mask>"], 400)
    tok = T.RobertaTokenizer(vocab=vocab, merges=merges, model_max_length=512)
    cfg = T.RobertaConfig(vocab_size=len(tok), max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
                          pad_token_id=1, bos_token_id=0, eos_token_id=2, architectures=["RobertaForMaskedLM"], **TINY)
    torch.manual_seed(seed)
    return _save_model(T.RobertaForMaskedLM(cfg).eval(), tok, Path(out))


def vit_backbone(out: str | Path, seed: int = 0) -> Path:
    """``ViTModel`` (with pooler) + ``ViTImageProcessor`` as google/vit-base-patch16-224-in21k's
    (image 224, patch 16, qkv_bias, layer_norm_eps 1e-12; processor: resize 224, mean = std = 0.5)."""
    import torch
    import transformers as T

    cfg = T.ViTConfig(image_size=224, patch_size=16, num_channels=3, qkv_bias=True, layer_norm_eps=1e-12,
                      hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0, architectures=["ViTModel"], **TINY)
    torch.manual_seed(seed)
    proc = T.ViTImageProcessor(size={"height": 224, "width": 224}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    return _save_model(T.ViTModel(cfg).eval(), proc, Path(out))


def llama_backbone(out: str | Path, flavour: str = "llama2", seed: int = 0) -> Path:
    """``LlamaForCausalLM`` + the tokenizer of ``flavour`` ("llama2": meta-llama/Llama-2-7b-hf's
    LlamaTokenizer layout; "llama3": meta-llama/Meta-Llama-3-8B's byte-level PreTrainedTokenizerFast),
    special tokens and their absence of a pad token as the real ones."""
    import torch
    import transformers as T
    from tokenizers import processors

    if flavour == "llama2":
        vocab, merges, _ = _bpe_vocab(False, ["<unk>", "<s>", "</s>"], 600)
        tok = T.LlamaTokenizer(vocab=vocab, merges=merges, unk_token="<unk>", bos_token="<s>", eos_token="</s>", add_bos_token=True,
                               model_max_length=4096)
        kv, positions, bos, eos = TINY["num_attention_heads"], 4096, "<s>", "</s>"
    elif flavour == "llama3":
        _, _, backend = _bpe_vocab(True, ["<|begin_of_text|>", "<|end_of_text|>"], 600)
        backend.post_processor = processors.TemplateProcessing(
            single="<|begin_of_text|> $A", pair="<|begin_of_text|> $A <|begin_of_text|> $B",
            special_tokens=[("<|begin_of_text|>", backend.token_to_id("<|begin_of_text|>"))])
        from tokenizers import decoders
        backend.decoder = decoders.ByteLevel()
        tok = T.PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<|begin_of_text|>",
                                        eos_token="<|end_of_text|>", model_max_length=8192)
        kv, positions, bos, eos = 2, 8192, "<|begin_of_text|>", "<|end_of_text|>"
    else:
        raise ValueError(f"flavour must be llama2 or llama3, got {flavour!r}")
    cfg = T.LlamaConfig(vocab_size=len(tok), num_key_value_heads=kv, max_position_embeddings=positions,
                        rms_norm_eps=1e-5, tie_word_embeddings=False, attention_bias=False, mlp_bias=False,
                        bos_token_id=tok.convert_tokens_to_ids(bos), eos_token_id=tok.convert_tokens_to_ids(eos),
                        architectures=["LlamaForCausalLM"], **TINY)
    torch.manual_seed(seed)
    return _save_model(T.LlamaForCausalLM(cfg).eval(), tok, Path(out))


# ----------------------------------------------------------------------------------------- GLUE
# nyu-mll/glue as `datasets` builds it (huggingface/datasets, datasets/glue/glue.py, _info and the
# Config list): text columns Value("string"), `label` ClassLabel(label_classes) or Value("float32")
# (STS-B), `idx` Value("int32"); the test splits carry label -1 (process_label(-1)).
GLUE_TASKS = {  # task: (text columns, label names or None for regression, the evaluation/test split names)
    "cola": (("sentence",), ["unacceptable", "acceptable"], ("validation",), ("test",)),
    "sst2": (("sentence",), ["negative", "positive"], ("validation",), ("test",)),
    "mrpc": (("sentence1", "sentence2"), ["not_equivalent", "equivalent"], ("validation",), ("test",)),
    "qqp": (("question1", "question2"), ["not_duplicate", "duplicate"], ("validation",), ("test",)),
    "stsb": (("sentence1", "sentence2"), None, ("validation",), ("test",)),
    "mnli": (("premise", "hypothesis"), ["entailment", "neutral", "contradiction"],
             ("validation_matched", "validation_mismatched"), ("test_matched", "test_mismatched")),
    "qnli": (("question", "sentence"), ["entailment", "not_entailment"], ("validation",), ("test",)),
    "rte": (("sentence1", "sentence2"), ["entailment", "not_entailment"], ("validation",), ("test",)),
    "wnli": (("sentence1", "sentence2"), ["not_entailment", "entailment"], ("validation",), ("test",)),
}
GLUE_ROWS = {"train": 16, "eval": 8, "test": 4}


def _glue_labels(names: list[str] | None, n: int, seed: int) -> list:
    if names is None:
        return [round(float(x), 3) for x in np.random.default_rng(seed).uniform(0, 5, n)]
    return [i % len(names) for i in range(n)]


def glue_save_to_disk(root: str | Path, tasks=("sst2", "mrpc", "cola", "qnli", "rte", "stsb")) -> Path:
    """``root/<task>/``: one ``DatasetDict.save_to_disk`` folder per task with the splits, columns and
    features ``load_dataset("nyu-mll/glue", task)`` returns (train, validation[_matched/_mismatched],
    test[...] whose labels are -1). Returns ``root`` (the value of ``data.data_dir``)."""
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

    root = Path(root)
    for task in tasks:
        keys, names, evals, tests = GLUE_TASKS[task]
        feats = Features({**{k: Value("string") for k in keys},
                          "label": Value("float32") if names is None else ClassLabel(names=names),
                          "idx": Value("int32")})
        splits = {"train": GLUE_ROWS["train"], **{s: GLUE_ROWS["eval"] for s in evals}, **{s: GLUE_ROWS["test"] for s in tests}}
        dd = {}
        for j, (split, n) in enumerate(splits.items()):
            cols = {k: _sentences(n, seed=_seed(task, split, k)) for k in keys}
            labels = [-1] * n if split.startswith("test") else _glue_labels(names, n, j)
            if names is None and split.startswith("test"):
                labels = [-1.0] * n
            dd[split] = Dataset.from_dict({**cols, "label": labels, "idx": list(range(n))}, features=feats)
        DatasetDict(dd).save_to_disk(str(root / task))
    return root


# The original GLUE distribution (W4ngatang's download_glue_data.py, gist 60c2bdb54d156a41194446737ce03e2e,
# as NVIDIA DeepLearningExamples' download_mrpc.sh fetches it; read with huggingface/datasets'
# glue.py _generate_examples): one folder per task named as the zip (CoLA, SST-2, MRPC, STS-B, QQP,
# MNLI, QNLI, RTE, WNLI) with train.tsv / dev.tsv / test.tsv (MNLI: dev_matched.tsv,
# dev_mismatched.tsv, test_*.tsv), tab-separated, unquoted (csv.QUOTE_NONE). CoLA's train/dev have
# no header: source, label, original mark ("*" when unacceptable), sentence. MRPC's train/dev are
# written by format_mrpc from msr_paraphrase_train.txt with the header
# "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String"; its test.tsv "index\t#1 ID\t#2 ID\t#1 String\t#2 String".
GLUE_FOLDERS = {"cola": "CoLA", "sst2": "SST-2", "mrpc": "MRPC", "stsb": "STS-B", "qqp": "QQP", "mnli": "MNLI",
                "qnli": "QNLI", "rte": "RTE", "wnli": "WNLI"}
STSB_HEADER = ["index", "genre", "filename", "year", "old_index", "source1", "source2", "sentence1", "sentence2"]
MNLI_HEADER = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
               "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]


def _write_tsv(path: Path, header: list[str] | None, rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar=None, quotechar=None, lineterminator="\n")
        if header:
            w.writerow(header)
        w.writerows([[str(c) for c in r] for r in rows])


def _glue_tsv_rows(task: str, split: str, n: int) -> tuple[list[str] | None, list[list]]:
    keys, names, _, _ = GLUE_TASKS[task]
    texts = [_sentences(n, seed=_seed(task, split, k)) for k in keys]
    test = split.startswith("test")
    labels = _glue_labels(names, n, 1)
    if task == "cola":
        if test:
            return ["index", "sentence"], [[i, texts[0][i]] for i in range(n)]
        return None, [["gj04", labels[i], "" if labels[i] else "*", texts[0][i]] for i in range(n)]
    if task == "sst2":
        return (["index", "sentence"], [[i, texts[0][i]] for i in range(n)]) if test else (
            ["sentence", "label"], [[texts[0][i], labels[i]] for i in range(n)])
    if task == "mrpc":
        ids = [[1000 + 2 * i, 1001 + 2 * i] for i in range(n)]
        head = ["index" if test else "Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"]
        return head, [[i if test else labels[i], *ids[i], texts[0][i], texts[1][i]] for i in range(n)]
    if task == "stsb":
        base = [[i, "main-captions", "MSRvid", "2012test", f"{i:04d}", "none", "none", texts[0][i], texts[1][i]]
                for i in range(n)]
        return (STSB_HEADER, base) if test else (STSB_HEADER + ["score"], [r + [f"{labels[i]:.3f}"] for i, r in enumerate(base)])
    if task == "qqp":
        head = ["id", "question1", "question2"] if test else ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
        return head, [[i, texts[0][i], texts[1][i]] if test else [i, 2 * i + 1, 2 * i + 2, texts[0][i], texts[1][i], labels[i]]
                      for i in range(n)]
    if task == "mnli":
        base = [[i, 100 + i, f"{100 + i}e", "fiction", "( x )", "( y )", "(ROOT x)", "(ROOT y)", texts[0][i], texts[1][i]]
                for i in range(n)]
        if test:
            return MNLI_HEADER, base
        gold = [names[labels[i]] for i in range(n)]
        if split == "train":
            return MNLI_HEADER + ["label1", "gold_label"], [r + [gold[i], gold[i]] for i, r in enumerate(base)]
        return (MNLI_HEADER + [f"label{k}" for k in range(1, 6)] + ["gold_label"],
                [r + [gold[i]] * 5 + [gold[i]] for i, r in enumerate(base)])
    # qnli, rte, wnli: index, the two texts, label (QNLI/RTE as strings entailment/not_entailment, WNLI 0/1)
    head = ["index", *keys] + ([] if test else ["label"])
    as_text = task in ("qnli", "rte")
    return head, [[i, texts[0][i], texts[1][i]] + ([] if test else [names[labels[i]] if as_text else labels[i]])
                  for i in range(n)]


def glue_original_tsv(root: str | Path, tasks=tuple(GLUE_FOLDERS)) -> Path:
    """``root/<CoLA|SST-2|MRPC|...>/{train,dev,test}.tsv`` as download_glue_data.py leaves them
    (MNLI: dev_matched/dev_mismatched/test_matched/test_mismatched). Returns ``root``."""
    root = Path(root)
    for task in tasks:
        folder = root / GLUE_FOLDERS[task]
        evals = ("dev_matched", "dev_mismatched") if task == "mnli" else ("dev",)
        tests = ("test_matched", "test_mismatched") if task == "mnli" else ("test",)
        for split in ("train", *evals, *tests):
            n = GLUE_ROWS["train" if split == "train" else "test" if split.startswith("test") else "eval"]
            header, rows = _glue_tsv_rows(task, split, n)
            _write_tsv(folder / f"{split}.tsv", header, rows)
    return root


# ----------------------------------------------------------------------------------------- images
# FourierFT's ViT datasets (harness/suites/vision.py VISION_TASKS) as save_to_disk folders with the
# splits each hub repository ships (timm/oxford-iiit-pet: train/test; timm/eurosat-rgb and
# timm/resisc45: train/validation/test; cansa/Describable-Textures-Dataset-DTD: train only;
# Multimodal-Fatima/*_train + *_test: train + test, saved together as the harness's hint does),
# columns `image` (datasets.Image) and `label` (ClassLabel with the dataset's number of classes).
VISION_TASKS = {"pets": (37, ("train", "test")), "cars": (196, ("train", "test")), "dtd": (47, ("train",)),
                "eurosat": (10, ("train", "validation", "test")), "fgvc": (100, ("train", "test")),
                "resisc45": (45, ("train", "validation", "test")), "cifar10": (10, ("train", "test")),
                "cifar100": (100, ("train", "test")), "sun397": (397, ("train", "test"))}
IMAGE_SIZES = ((32, 32), (48, 40), (300, 200), (64, 96))  # (width, height): CIFAR-like, odd, landscape, portrait


def _images(n: int, seed: int):
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")
            for w, h in (IMAGE_SIZES[i % len(IMAGE_SIZES)] for i in range(n))]


def _image_split(n_classes: int, used: int, seed: int, image_key="image", label_key="label", extra=None):
    from datasets import ClassLabel, Dataset, Features, Image

    labels = [c for c in range(used) for _ in range(PER_CLASS)]
    feats = {image_key: Image(), label_key: ClassLabel(names=[f"class_{i}" for i in range(n_classes)])}
    data = {image_key: _images(len(labels), seed), label_key: labels}
    for key, (names, values) in (extra or {}).items():
        feats[key], data[key] = ClassLabel(names=names), values(labels)
    return Dataset.from_dict(data, features=Features(feats))


def vision_save_to_disk(root: str | Path, tasks=("pets", "cars", "dtd", "eurosat", "fgvc", "resisc45"),
                        used_classes: int = 3) -> Path:
    """``root/<task>/``: a save_to_disk DatasetDict per task with the hub's splits, ``image``/``label``,
    ``used_classes`` classes present :data:`PER_CLASS` times each per split. Returns ``root``."""
    from datasets import DatasetDict

    root = Path(root)
    for t, task in enumerate(tasks):
        n_classes, splits = VISION_TASKS[task]
        DatasetDict({s: _image_split(n_classes, used_classes, seed=10 * t + j) for j, s in enumerate(splits)}
                    ).save_to_disk(str(root / task))
    return root


def cifar100_save_to_disk(root: str | Path, used_classes: int = 3) -> Path:
    """``root/cifar100/``: uoft-cs/cifar100's schema (train/test; ``img`` 32x32 PNG, ``fine_label``
    ClassLabel(100), ``coarse_label`` ClassLabel(20)). Returns ``root``."""
    from datasets import DatasetDict

    root = Path(root)
    coarse = {"coarse_label": ([f"superclass_{i}" for i in range(20)], lambda ys: [y // 5 for y in ys])}
    DatasetDict({s: _image_split(100, used_classes, seed=j, image_key="img", label_key="fine_label", extra=coarse)
                 for j, s in enumerate(("train", "test"))}).save_to_disk(str(root / "cifar100"))
    return root


# ----------------------------------------------------------------------------------------- math
# openai/gsm8k, config "main" (hub files main/train-00000-of-00001.parquet, main/test-...): columns
# `question`, `answer` = rationale with <<calc>> annotations, then "#### <number>".
GSM8K_ROWS = [
    ("Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. "
     "How many clips did Natalia sell altogether in April and May?",
     "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nNatalia sold 48+24 = <<48+24=72>>72 clips altogether in April "
     "and May.\n#### 72"),
    ("Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?",
     "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute.\nWorking 50 minutes, she earned 0.2 x 50 = $<<0.2*50=10>>10.\n#### 10"),
    ("A shop sold 1,200 pens on Monday and 1,104 on Tuesday. How many pens did it sell?",
     "It sold 1,200 + 1,104 = <<1200+1104=2304>>2,304 pens.\n#### 2,304"),
    ("Tom has 5 apples and gives away all 5. How many apples are left?",
     "Tom has 5 - 5 = <<5-5=0>>0 apples left.\n#### 0"),
]
# DigitalLearningGmbH/MATH-lighteval (the copy lm-eval uses since the DMCA takedown of
# hendrycks/competition_math; files data/train-00000-of-00001.parquet, data/test-...): columns
# `problem`, `level` ("Level 1".."Level 5"), `type`, `solution` whose final answer is in \boxed{}.
MATH_ROWS = [
    ("What is $2+3$?", "Level 1", "Prealgebra", "We add: $2+3=\\boxed{5}$."),
    ("Simplify $\\frac{2}{4}$.", "Level 2", "Algebra", "Dividing by 2 gives $\\boxed{\\frac{1}{2}}$."),
    ("What is the area of a circle of radius 2?", "Level 3", "Geometry", "The area is $\\pi r^2 = \\boxed{4\\pi}$."),
    ("Compute $7-7$.", "Level 1", "Prealgebra", "$7-7=\\boxed{0}$."),
]


def _hub_text(root: Path, name: str, columns: list[str], rows: list[tuple], n: dict[str, int], parquet_dir: str):
    from datasets import Dataset, DatasetDict

    dd = DatasetDict({split: Dataset.from_dict({c: [rows[i % len(rows)][j] for i in range(k)]
                                                for j, c in enumerate(columns)}) for split, k in n.items()})
    dd.save_to_disk(str(root / "save_to_disk" / name))
    for split, ds in dd.items():
        path = root / "parquet" / name / parquet_dir / f"{split}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.to_parquet(str(path))
    return root / "save_to_disk" / name, root / "parquet" / name


def gsm8k_hub(root: str | Path, n_train: int = 8, n_test: int = 4) -> tuple[Path, Path]:
    """(save_to_disk folder ``root/save_to_disk/gsm8k``, parquet folder ``root/parquet/gsm8k`` with
    ``main/{train,test}-00000-of-00001.parquet``) in openai/gsm8k's schema."""
    return _hub_text(Path(root), "gsm8k", ["question", "answer"], GSM8K_ROWS, {"train": n_train, "test": n_test}, "main")


def math_hub(root: str | Path, n_train: int = 8, n_test: int = 4) -> tuple[Path, Path]:
    """(save_to_disk folder ``root/save_to_disk/math``, parquet folder ``root/parquet/math`` with
    ``data/{train,test}-00000-of-00001.parquet``) in DigitalLearningGmbH/MATH-lighteval's schema."""
    return _hub_text(Path(root), "math", ["problem", "level", "type", "solution"], MATH_ROWS,
                     {"train": n_train, "test": n_test}, "data")


# ----------------------------------------------------------------------------------------- LLM-Adapters
# AGI-Edgerunners/LLM-Adapters (read at 8166572): every item is {"instruction", "input", "output",
# "answer"}; commonsense answers are strings (dataset/<folder>/test.json, all eight sets, one
# version each, commit ae07636); the training file ft-training_set/commonsense_170k.json (a git-lfs
# file) holds the same items. dataset/gsm8k/test.json's `answer` changed encoding in its history:
# lists [2304.0] (04be96b, 2023-04-02; also 231a92e, fda8748), floats 800.0 (cfb5a66), strings
# "576.0" (ba26b50 on, HEAD); its `output` starts with "\nA: " and ends "The answer is N.".
COMMONSENSE_FOLDERS = {"boolq": "boolq", "piqa": "piqa", "siqa": "social_i_qa", "hellaswag": "hellaswag",
                       "winogrande": "winogrande", "arc_e": "ARC-Easy", "arc_c": "ARC-Challenge", "obqa": "openbookqa"}


def _choice(prompt: str, options: list[str], name: str, fmt: str) -> str:
    return f"{prompt}\n\n" + " ".join(f"{name}{i + 1}: {o}" for i, o in enumerate(options)) + f"\n\nAnswer format: {fmt}"


def _commonsense_item(s: str, i: int) -> dict:
    """One item of set ``s`` worded as LLM-Adapters' test.json files are (instruction openings and
    "Answer format:" lines copied from boolq/piqa/winogrande/ARC/social_i_qa/openbookqa test.json;
    hellaswag's, an LFS file, from commonsense_evaluate.py's ending1..ending4 pattern)."""
    q = _sentences(1, seed=_seed(s, i))[0]
    if s == "boolq":
        answer = ("true", "false")[i % 2]
        instruction = f"Please answer the following question with true or false, question: {q}?\n\nAnswer format: true/false"
    elif s == "piqa":
        answer = f"solution{i % 2 + 1}"
        instruction = ("Please choose the correct solution to the question: " + q + "\n\n"
                       + "\n\n".join(f"Solution{k}: option {k}" for k in (1, 2)) + "\n\nAnswer format: solution1/solution2")
    elif s == "winogrande":
        answer = f"option{i % 2 + 1}"
        instruction = (f"Please choose the correct answer to fill in the blank to complete the given sentence: {q} _ ."
                       "\n\nOption1: Sarah Option2: Maria Answer format: option1/option2")
    elif s == "hellaswag":
        answer = f"ending{i % 4 + 1}"
        instruction = _choice(f"Please choose the correct ending to complete the given sentence: {q}",
                              ["a", "b", "c", "d"], "Ending", "ending1/ending2/ending3/ending4")
    else:
        k = 3 if s == "siqa" else 4
        answer = f"answer{i % k + 1}"
        instruction = _choice(f"Please choose the correct answer to the question: {q}", [f"choice {j}" for j in range(k)],
                              "Answer", "/".join(f"answer{j + 1}" for j in range(k)))
    return {"instruction": instruction, "input": "", "output": f"the correct answer is {answer}", "answer": answer}


def _gsm8k_adapters_items() -> list[dict]:
    """dataset/gsm8k/test.json items with every answer encoding its history holds, plus a 0."""
    answers = [[2304.0], 800.0, "576.0", 0, [72.0], "10.0"]
    return [{"instruction": f"Question {i}: how many items are there in total?", "input": "",
             "output": f"\nA: We count them. The answer is {a[0] if isinstance(a, list) else a}.", "answer": a}
            for i, a in enumerate(answers)]


def llm_adapters_tree(root: str | Path, per_set: int = 4, n_train_per_set: int = 2) -> Path:
    """A clone's layout: ``ft-training_set/commonsense_170k.json`` (``n_train_per_set`` items of each
    set, shuffled as the real file is), ``dataset/<folder>/test.json`` for the eight commonsense sets
    (``per_set`` items each) and ``dataset/gsm8k/test.json`` (list, float, string and zero answers).
    Returns ``root`` (the value of ``data.data_dir``)."""
    root = Path(root)

    def dump(path: Path, items: list[dict]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(items, indent=4), encoding="utf-8")

    train = [_commonsense_item(s, 100 + i) for s in COMMONSENSE_FOLDERS for i in range(n_train_per_set)]
    random.Random(0).shuffle(train)
    dump(root / "ft-training_set" / "commonsense_170k.json", train)
    for s, folder in COMMONSENSE_FOLDERS.items():
        dump(root / "dataset" / folder / "test.json", [_commonsense_item(s, i) for i in range(per_set)])
    dump(root / "dataset" / "gsm8k" / "test.json", _gsm8k_adapters_items())
    return root


# ----------------------------------------------------------------------------------------- pytest
def build_all(root: str | Path) -> dict[str, Path]:
    """Every fixture under ``root``; the paths a rehearsal config names, by role."""
    root = Path(root)
    out = {"roberta": roberta_backbone(root / "models" / "roberta-base"),
           "vit": vit_backbone(root / "models" / "vit-base-patch16-224-in21k"),
           "llama2": llama_backbone(root / "models" / "llama2-7b", "llama2"),
           "llama3": llama_backbone(root / "models" / "llama3-8b", "llama3"),
           "glue": glue_save_to_disk(root / "glue"), "glue_tsv": glue_original_tsv(root / "glue_data"),
           "vision": vision_save_to_disk(root / "vision"), "llm_adapters": llm_adapters_tree(root / "LLM-Adapters")}
    cifar100_save_to_disk(out["vision"])
    out["gsm8k"], out["gsm8k_parquet"] = gsm8k_hub(root / "hub")
    out["math"], out["math_parquet"] = math_hub(root / "hub")
    return out


try:
    import pytest
except ImportError:  # pragma: no cover - the module is usable without pytest
    pytest = None

if pytest is not None:
    @pytest.fixture(scope="session")
    def paper_fixtures(tmp_path_factory) -> dict[str, Path]:
        """All backbones and data sets of this module, built once per test session (a few seconds);
        use with ``from paper_fixtures import paper_fixtures`` in a test module (or a conftest)."""
        import datasets

        bars = datasets.is_progress_bar_enabled()
        datasets.disable_progress_bars()
        try:
            return build_all(tmp_path_factory.mktemp("paper_fixtures"))
        finally:
            if bars:
                datasets.enable_progress_bars()
