"""Table configs, one package (the public names are re-exported here: ``from harness.config import load_table``).

  load.py      read YAML, merge the mini scale, validate against config/schema.yaml: :func:`load_table`
  checks.py    what the schema cannot express: tasks, methods, hyperparameters, target modules
  settings.py  one job's settings (:class:`JobSettings`), :func:`run_key`, where the backbone loads from
  sweeps.py    a ``sweep:`` block -> one variant per value; the axes
  tuning.py    ``tune:`` blocks and tuning records
  common.py    the repository root and :class:`ConfigError`
"""
from harness.config.checks import check_target_modules, validate_semantics
from harness.config.common import ROOT, ConfigError
from harness.config.load import MINI_DIR, SCALES, SCHEMA, load_table, table_configs, validate_schema
from harness.config.settings import (
    RUN_SECTIONS,
    SETTING_KEYS,
    JobSettings,
    backbone_path,
    job_settings,
    resolve_local_path,
    run_key,
)
from harness.config.sweeps import RESERVED_AXES, expand_sweeps, sweep_value_name, table_axes
from harness.config.tuning import (
    TUNABLE_SETTINGS,
    TUNE_SWITCH_VALUES,
    TUNING_DEFAULTS,
    apply_tuned,
    resolve_space,
    tune_spec,
    tune_switch,
    tuned_job_settings,
    tuning_settings,
    validate_tuning,
)

__all__ = [
    "MINI_DIR", "RESERVED_AXES", "ROOT", "RUN_SECTIONS", "SCALES", "SCHEMA", "SETTING_KEYS", "TUNABLE_SETTINGS",
    "TUNE_SWITCH_VALUES", "TUNING_DEFAULTS", "ConfigError", "JobSettings", "apply_tuned", "backbone_path",
    "check_target_modules", "expand_sweeps", "job_settings", "load_table", "resolve_local_path", "resolve_space",
    "run_key", "sweep_value_name", "table_axes", "table_configs", "tune_spec", "tune_switch", "tuned_job_settings",
    "tuning_settings", "validate_schema", "validate_semantics", "validate_tuning",
]
