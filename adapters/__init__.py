"""Fourier-domain PEFT methods and their baselines behind one registry."""
from adapters.registry import Adapted, MethodConfigError, apply_method, available_methods, build_config, get_method

__all__ = ["Adapted", "MethodConfigError", "apply_method", "available_methods", "build_config", "get_method"]
