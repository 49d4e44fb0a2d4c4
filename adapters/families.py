"""Imports every method family so that its ``@register`` calls run. Add new families here."""
from adapters import bottleneck, classic, fora, lfma, llm_adapters, moe, peft_baselines  # noqa: F401
