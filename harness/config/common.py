"""What every part of the config package shares: the repository root and the one error a config raises."""
from __future__ import annotations

from pathlib import Path

__all__ = ["ROOT", "ConfigError"]

ROOT = Path(__file__).resolve().parent.parent.parent


class ConfigError(ValueError):
    """A config key or value is wrong; the message names the file, the key and what is allowed."""
