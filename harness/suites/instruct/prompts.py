"""The prompts: LLM-Adapters' Alpaca templates (training text and evaluation prompt, byte for byte)
and FoRA's math instruction suffix."""
from __future__ import annotations

__all__ = ["ALPACA_EVAL", "ALPACA_EVAL_WITH_INPUT", "ALPACA_TRAIN", "ALPACA_TRAIN_WITH_INPUT", "GSM8K_SUFFIX",
           "eval_prompt", "train_text"]

# ------------------------------------------------------------------ the Alpaca templates
# LLM-Adapters finetune.py, generate_prompt(data_point) (training; the output is appended):
# note the two spaces after "request." and the 16-space line between instruction and response.
ALPACA_TRAIN = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request.  \n\n"
    "                ### Instruction:\n"
    "                {instruction}\n"
    "                \n"
    "                ### Response:\n"
    "                {output}"
)
ALPACA_TRAIN_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request. \n\n"
    "                ### Instruction:\n"
    "                {instruction}\n"
    "                \n"
    "                ### Input:\n"
    "                {input}\n"
    "                \n"
    "                ### Response:\n"
    "                {output}"
)
# LLM-Adapters commonsense_evaluate.py and evaluate.py (identical), generate_prompt(instruction, input):
# one space after "request.", empty lines, and the prompt ends with 16 spaces after "### Response:\n".
ALPACA_EVAL = (
    "Below is an instruction that describes a task. Write a response that appropriately completes the request. \n\n"
    "                ### Instruction:\n"
    "                {instruction}\n"
    "\n"
    "                ### Response:\n"
    "                "
)
ALPACA_EVAL_WITH_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further context. "
    "Write a response that appropriately completes the request.\n\n"
    "                ### Instruction:\n"
    "                {instruction}\n"
    "\n"
    "                ### Input:\n"
    "                {input}\n"
    "\n"
    "                ### Response:\n"
    "                "
)


def train_text(instruction: str, output: str, input: str = "") -> str:  # noqa: A002 - LLM-Adapters' field name
    """The training text of one item (prompt and response), as LLM-Adapters' finetune.py builds it."""
    if input:
        return ALPACA_TRAIN_WITH_INPUT.format(instruction=instruction, input=input, output=output)
    return ALPACA_TRAIN.format(instruction=instruction, output=output)


def eval_prompt(instruction: str, input: str = "") -> str:  # noqa: A002
    """The generation prompt of one item, as LLM-Adapters' commonsense_evaluate.py / evaluate.py build it."""
    if input:
        return ALPACA_EVAL_WITH_INPUT.format(instruction=instruction, input=input)
    return ALPACA_EVAL.format(instruction=instruction)


GSM8K_SUFFIX = "\nAnswer the above question. First think step by step and then answer the final number.\n"
# FoRA §4.2: "the same prompt template as in (Zhang et al., 2023b)" (LLaMA-Adapter: Alpaca); its
# Appendix C shows the MATH instruction ending with "Answer the above question. First think step by
# step and then answer the final number." and responses ending "The final answer is: <answer>"
# (the LoftQ/RoSA GSM8K format: "#### " replaced by "The final answer is: ").
