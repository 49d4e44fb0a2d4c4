"""Optional experiment tracking: a finished job's records copied to MLflow.

Off by default. On when the table config says ``tracking: mlflow`` or the environment says
``FPB_TRACKING=mlflow`` (what ``snakemake --config tracking=mlflow`` sets for every job, see the
Snakefile; ``tracking=off`` there forces it off for every table). The store is
``MLFLOW_TRACKING_URI`` when set (a user's tracking server), else the folder ``mlruns/`` in the
working directory (MLflow's file store: no server; ``mlflow ui --backend-store-uri mlruns``). MLflow 3
keeps that store in maintenance mode and refuses it unless ``MLFLOW_ALLOW_FILE_STORE=true``, which
is set for a ``file:`` store here; a database (``sqlite:///mlflow.db``, needs the full ``mlflow``)
or a server through ``MLFLOW_TRACKING_URI`` is MLflow's recommended store for many runs.

One MLflow run per job, in the experiment ``<table> (<scale>)``, named ``<variant>/<task>/seed<n>``:
parameters = the job's settings and its resolved method config (dotted keys, e.g. ``hparams.r``),
metrics per epoch (step = epoch: the task's metric, the last loss, eval seconds) and at the end
(best metric and epoch, trainable parameters, step time, peak memory), artifacts = the job's
files (adapter, predictions, profile, train and eval records). It reads the files the job wrote
(harness/train.py calls :func:`track_job` once they exist); nothing reads MLflow back: the tables
come from the job's own files. A tracking error (a server down) is a warning, never a failed job.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from harness.core.atomic import read_json

MODES = ("off", "mlflow")
ENV = "FPB_TRACKING"
LOCAL_STORE = "mlruns"
ARTIFACTS = ("adapter.safetensors", "predictions.npz", "profile.json", "train.json", "eval.json")
FINAL_METRICS = {  # MLflow name -> (file, key)
    "best_metric": ("train.json", "best_metric"),
    "best_epoch": ("train.json", "best_epoch"),
    "trainable_params": ("train.json", "trainable_params"),
    "step_seconds_median": ("profile.json", "step_seconds_median"),
    "samples_per_second": ("profile.json", "samples_per_second"),
    "peak_memory_mb": ("profile.json", "peak_memory_mb"),
    "wall_seconds": ("profile.json", "wall_seconds"),
}


class TrackingError(ValueError):
    pass


def tracking_mode(value, key: str = "tracking") -> str:
    """``value`` as one of :data:`MODES` (YAML reads a bare ``off`` as False); a clear error otherwise."""
    mode = "off" if value in (None, False, "") else str(value).strip().lower()
    if mode not in MODES:
        raise TrackingError(f"{key}: {value!r} is not a tracking mode; allowed: {', '.join(MODES)}")
    return mode


def enabled(cfg: dict) -> bool:
    """The environment (the command line's ``--config tracking=...``) wins over the table config."""
    if os.environ.get(ENV):
        return tracking_mode(os.environ[ENV], ENV) == "mlflow"
    return tracking_mode(cfg.get("tracking")) == "mlflow"


def store_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or Path(LOCAL_STORE).resolve().as_uri()


def _flat(d: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flat(v, f"{prefix}{k}.")
        else:
            out[f"{prefix}{k}"] = json.dumps(v) if isinstance(v, (list, tuple)) else str(v)
    return out


def log_job(out_dir: Path, scale: str, uri: str) -> str:
    """Copy one finished job's records in ``out_dir`` to the MLflow store at ``uri``; the run id."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    if uri.startswith("file:"):  # the folder store, refused by MLflow 3 without this opt-in
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    out_dir = Path(out_dir)
    records = {name: read_json(out_dir / name) for name in ("train.json", "profile.json")
               if (out_dir / name).is_file()}
    train = records["train.json"]
    client = MlflowClient(tracking_uri=uri)
    name = f"{train['table']} ({scale})"
    exp = client.get_experiment_by_name(name)
    exp_id = exp.experiment_id if exp else client.create_experiment(name)
    run_name = f"{train['variant']}/{train['task']}/seed{train['seed']}"
    tags = {"mlflow.runName": run_name, "scale": scale, **{k: str(train.get(k)) for k in
            ("table", "variant", "method", "task", "seed", "suite", "model", "status", "metric_name")}}
    run = client.create_run(exp_id, run_name=run_name, tags=tags)
    run_id = run.info.run_id
    params = _flat({**train.get("settings", {}), "method_config": train.get("method_config") or {}})
    now = int(run.info.start_time)
    metric_name = train.get("metric_name") or "metric"
    metrics = []
    for h in train.get("history", []):
        step = int(h["epoch"])
        for key, value in ((metric_name, h.get("metric")), ("last_loss", h.get("last_loss")),
                           ("eval_seconds", h.get("eval_seconds"))):
            if value is not None:
                metrics.append(Metric(key, float(value), now, step))
    for key, (file, field) in FINAL_METRICS.items():
        value = records.get(file, {}).get(field)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            metrics.append(Metric(key, float(value), now, 0))
    client.log_batch(run_id, metrics=metrics, params=[Param(k, v[:6000]) for k, v in params.items()],
                     tags=[RunTag(k, v) for k, v in tags.items() if not k.startswith("mlflow.")])
    for name in ARTIFACTS:
        if (out_dir / name).is_file():
            client.log_artifact(run_id, str(out_dir / name))
    client.set_terminated(run_id, "FINISHED" if train.get("status", "ok") == "ok" else "FAILED")
    return run_id


def track_job(cfg: dict, out_dir: Path) -> str | None:
    """The training loop's hook: log the job in ``out_dir`` when tracking is on; never raises for
    the store (the job's own files are what count)."""
    if not enabled(cfg):
        return None
    try:
        return log_job(out_dir, cfg.get("_scale", ""), store_uri())
    except Exception as e:  # noqa: BLE001 - a tracking store that is down must not fail a finished job
        print(f"warning: MLflow tracking of {out_dir} failed ({type(e).__name__}: {e}); the job's files are complete",
              file=sys.stderr)
        return None
