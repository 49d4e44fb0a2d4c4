"""Imports every method family so that its ``@register`` calls run. Add new families here."""
import importlib

FAMILIES = ["peft_baselines", "fora", "classic", "lfma", "bottleneck", "moe"]

for _family in FAMILIES:
    try:
        importlib.import_module(f"adapters.{_family}")
    except ModuleNotFoundError as e:  # a family still being written must not break the others
        if e.name != f"adapters.{_family}":
            raise
