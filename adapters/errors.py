"""The one exception of the adapters package (importable from every module without a cycle)."""


class MethodConfigError(ValueError):
    """A method name or hyperparameter is wrong; the message names it and what is allowed."""
