"""Tuning as a stage: random search (Optuna) over a method's ``tune:`` space before its seeded runs.

Two steps, each a Snakemake rule (``rules/tune.smk``):

``prep-tune``  carves a validation' split out of the prepared TRAINING split
              (:func:`harness.core.splits.stratified_split`: per class or rating quintile, seeded) and
              saves train' / validation' like a prepared task folder. The split the table reports
              is never read by the tuning stage.
``tune``       draws ``trials`` settings from the space with Optuna's ``RandomSampler(seed)``: a pure
              function of (space, seed), so a budget of 4 is the first 4 of a budget of 8, and the
              same budget gives every method the same number of settings. Each setting is a real
              training run through :func:`harness.train.train` on train' (one seed: ``tuning.seed``),
              scored by its best epoch on validation'. Finished trials are stored in an Optuna
              journal file (``tuning/<scale>/<table>/<method>/<task>.db``); a killed job resumes with
              the trials it has not finished (an unfinished trial resumes from its epoch checkpoint).
              The best setting, the budget and every trial go to ``<task>.json``, which the
              train rule passes to ``python -m harness train --tuned``.
"""
from __future__ import annotations

import hashlib
import json
import math
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from harness.core.atomic import atomic_dir, write_json
from harness.core.errors import DataError
from harness.core.sources import model_source, no_datasets_bars
from harness.core.splits import stratified_split
from harness.config import (
    ConfigError,
    JobSettings,
    apply_tuned,
    job_settings,
    resolve_space,
    tune_spec,
)
from harness.prepare import label_stats, load_prepared
from harness.suites import get_suite

__all__ = ["TuningFailed", "draw_settings", "prepare_tuning_data", "run_tuning", "tuned_field"]

SPLIT_RULE = ("harness.core.splits.stratified_split over the prepared train split: round(fraction x size) of every "
              "stratum (class, or rating quintile for regression) held out by numpy default_rng(seed)")


class TuningFailed(RuntimeError):
    """No trial of a tuning study finished (every one diverged)."""


# ------------------------------------------------------------------------------ prep-tune
def prepare_tuning_data(prepared: str | Path, out_dir: str | Path, *, fraction: float, seed: int) -> dict:
    """Split the TRAIN split of a prepared task (``harness prep``) into train' and validation'
    and save them as a prepared folder (``train`` / ``validation`` + ``meta.json``); returns the meta.

    The meta records the split (fraction, seed, rule, the held-out row numbers of the prepared
    train split) next to the prepared meta; the prepared validation split is not copied.
    """
    from datasets import DatasetDict


    prepared = Path(prepared)
    dd, meta = load_prepared(prepared)
    suite = get_suite(meta["suite"])
    spec = suite.task(meta["task"])
    labels = np.asarray(dd["train"]["labels"])
    strata = np.zeros(len(labels), dtype=np.int64) if labels.dtype.kind in "USO" else suite.strata(spec, labels)
    train_idx, val_idx = stratified_split(strata, fraction, seed)
    if len(train_idx) == 0 or len(val_idx) == 0:
        raise DataError(f"{prepared}: {len(labels)} training examples give an empty train' or validation' "
                        f"at fraction {fraction}: use more training data or another tuning.fraction")
    out = DatasetDict({"train": dd["train"].select(train_idx.tolist()), "validation": dd["train"].select(val_idx.tolist())})
    y = {split: np.asarray(out[split]["labels"]) for split in ("train", "validation")}
    names = (meta.get("label_distribution", {}).get("train") or {}).get("names")
    tune_meta = {
        **meta,
        "n_train": len(out["train"]),
        "n_eval": len(out["validation"]),
        "label_distribution": {split: label_stats(spec, v, names) for split, v in y.items()},
        "baseline": suite.baseline(spec, out),
        "tuning_split": {
            "from": str(prepared),
            "fraction": fraction,
            "seed": seed,
            "rule": SPLIT_RULE,
            "n_train": len(train_idx),
            "n_validation": len(val_idx),
            "validation_rows": val_idx.tolist(),  # row numbers in the prepared train split
            "reported_split": "not used: train' and validation' both come from the prepared train split",
        },
    }
    with atomic_dir(out_dir) as tmp:
        with no_datasets_bars():
            out.save_to_disk(str(tmp))
        write_json(tmp / "meta.json", tune_meta)
    return tune_meta


# ------------------------------------------------------------------------------ the search
def _distribution(dist: dict):
    import optuna

    if "choices" in dist:
        return optuna.distributions.CategoricalDistribution(list(dist["choices"]))
    if dist.get("int"):
        return optuna.distributions.IntDistribution(int(dist["low"]), int(dist["high"]), log=bool(dist.get("log")))
    return optuna.distributions.FloatDistribution(float(dist["low"]), float(dist["high"]), log=bool(dist.get("log")))


def _distributions(resolved: dict) -> dict:
    return {k: _distribution(d) for k, d in sorted(resolved.items()) if "same_as" not in d}


def draw_settings(resolved: dict, n: int, seed: int) -> list[dict]:
    """The ``n`` settings a random search tries: drawn in order by Optuna's ``RandomSampler(seed)``
    from the resolved space (keys drawn in sorted order), ``same_as`` keys copied. Setting ``i``
    depends only on (space, seed, i)."""
    import optuna

    dists = _distributions(resolved)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed))
    out = []
    for _ in range(n):
        trial = study.ask(dists)
        params = dict(trial.params)
        study.tell(trial, 0.0)
        for key, dist in resolved.items():
            if "same_as" in dist:
                params[key] = params[dist["same_as"]]
        out.append({k: params[k] for k in sorted(params)})
    return out


def _study_name(cfg: dict, s: JobSettings, resolved: dict, spec: dict, data_meta: dict) -> str:
    """Study identity: what makes two trials comparable (space, seed, base settings, the carved
    data). The budget is not part of it, so raising ``trials`` reuses the finished ones."""
    blob = json.dumps({"space": resolved, "seed": spec["seed"], "max_epochs": spec["max_epochs"],
                       "settings": asdict(s), "model": model_source(cfg),  # the folder loaded, not only the hub id
                       "data": {k: data_meta.get(k) for k in ("task", "n_train", "n_eval", "tuning_split")}},
                      sort_keys=True, default=str)
    return f"{cfg['table']}/{s.variant}/{s.task}/{hashlib.sha256(blob.encode()).hexdigest()[:16]}"


def _storage(path: Path):
    import optuna

    path.parent.mkdir(parents=True, exist_ok=True)
    backend = optuna.storages.journal.JournalFileBackend(str(path))
    return optuna.storages.JournalStorage(backend)


def run_tuning(cfg: dict, variant: str, task: str, *, data_dir: str | Path, storage: str | Path, out: str | Path,
               trials: int | None = None, device: str = "auto", threads: int | None = None) -> dict:
    """Run (or resume) the random search of one (method, task) and write its record to ``out``.

    ``data_dir`` is the carved folder of :func:`prepare_tuning_data`; ``trials`` overrides the
    budget of the config. Returns the record (see the module docstring)."""
    import optuna

    from harness.train import TrainingDiverged, train  # lazy: torch and the loop for the search only (prep-tune runs without them)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = tune_spec(cfg, variant, switch=True, trials=trials)
    if spec is None:
        raise ConfigError(f"{cfg['table']}: methods.{variant} has no tune block (and tuning.fair is off): nothing to tune")
    if not spec["space"] or not spec["trials"]:
        raise ConfigError(f"{cfg['table']}: methods.{variant}: tuning needs a space and a budget (trials)")
    data_dir, storage, out = Path(data_dir), Path(storage), Path(out)
    _, data_meta = load_prepared(data_dir)
    if "tuning_split" not in data_meta:
        raise ConfigError(f"{data_dir} is not a carved tuning folder (no tuning_split in meta.json): tuning never "
                          "scores on the split the table reports; run prep-tune first")
    resolved = resolve_space(cfg, variant, task, spec["space"])
    base = job_settings(cfg, variant, task, spec["seed"])
    if spec["max_epochs"]:
        import dataclasses

        base = dataclasses.replace(base, epochs=min(base.epochs, spec["max_epochs"]))
    candidates = draw_settings(resolved, spec["trials"], spec["seed"])
    name = _study_name(cfg, base, resolved, spec, data_meta)
    study = optuna.create_study(study_name=name, storage=_storage(storage), direction="maximize", load_if_exists=True,
                                sampler=optuna.samplers.RandomSampler(seed=spec["seed"]))
    done = {t.user_attrs.get("slot"): t for t in study.get_trials(deepcopy=False)}
    dists = _distributions(resolved)
    trial_root = storage.with_suffix(".trials")
    for slot, params in enumerate(candidates):
        if slot in done:
            continue
        s = apply_tuned(base, params)
        work = trial_root / f"trial{slot}"
        print(f"[tune] {variant}/{task} trial {slot + 1}/{len(candidates)}: {params}", file=sys.stderr)
        t0 = time.perf_counter()
        attrs = {"slot": slot, "derived": {k: v for k, v in params.items() if k not in dists}}
        try:
            result = train(s, cfg, out_dir=work / "out", checkpoint=work / "checkpoint.pt", data_dir=data_dir,
                           device=device, threads=threads)
        except TrainingDiverged as e:
            state, value = optuna.trial.TrialState.FAIL, None
            attrs["reason"] = str(e)
        else:
            state, value = optuna.trial.TrialState.COMPLETE, float(result["best_metric"])
            attrs |= {"best_epoch": result["best_epoch"], "history": [h["metric"] for h in result["history"]]}
        attrs["seconds"] = time.perf_counter() - t0
        study.add_trial(optuna.trial.create_trial(
            params={k: v for k, v in params.items() if k in dists}, distributions=dists, value=value, state=state,
            user_attrs=attrs))
        shutil.rmtree(work, ignore_errors=True)
        print(f"[tune] {variant}/{task} trial {slot + 1}: {value if value is not None else 'diverged'}", file=sys.stderr)
    shutil.rmtree(trial_root, ignore_errors=True)
    record = _record(cfg, variant, task, spec, resolved, base, candidates, study, name, storage, data_dir, data_meta)
    write_json(out, record)
    return record


def _record(cfg, variant, task, spec, resolved, base, candidates, study, name, storage, data_dir, data_meta) -> dict:
    import optuna

    by_slot = {t.user_attrs.get("slot"): t for t in study.get_trials(deepcopy=False)}
    rows = []
    for slot, params in enumerate(candidates):
        t = by_slot[slot]
        ok = t.state == optuna.trial.TrialState.COMPLETE
        rows.append({"slot": slot, "params": params, "state": t.state.name.lower(), "value": t.value if ok else None,
                     "best_epoch": t.user_attrs.get("best_epoch"), "history": t.user_attrs.get("history"),
                     "seconds": t.user_attrs.get("seconds"), "reason": t.user_attrs.get("reason")})
    complete = [r for r in rows if r["state"] == "complete" and r["value"] is not None and math.isfinite(r["value"])]
    if not complete:
        raise TuningFailed(f"{variant} on {task}: none of the {len(rows)} trials finished (all diverged); "
                           "narrow the tune space")
    best = max(complete, key=lambda r: (r["value"], -r["slot"]))  # ties: the earlier setting
    configured = job_settings(cfg, variant, task, spec["seed"])
    default = {k: (configured.hparams.get(k.partition(".")[2]) if k.startswith("hparams.") else getattr(configured, k))
               for k in resolved}
    return {
        "table": cfg["table"],
        "scale": cfg.get("_scale"),
        "variant": variant,
        "method": base.method,
        "task": task,
        "best": {"params": best["params"], "value": best["value"], "slot": best["slot"], "best_epoch": best["best_epoch"]},
        "default": default,
        "budget": {
            "trials": len(rows),
            "completed": len(complete),
            "failed": len(rows) - len(complete),
            "fair": spec["fair"],
            "seed": spec["seed"],
            "epochs_per_trial": base.epochs,
            "sampler": f"optuna.samplers.RandomSampler(seed={spec['seed']})",
        },
        "space": resolved,
        "objective": {
            "metric": data_meta.get("metric_name") or data_meta.get("metric"),
            "selection": "best epoch of each trial on validation' (carved from the training split)",
            "data": str(data_dir),
            "n_train": data_meta["n_train"],
            "n_validation": data_meta["n_eval"],
            "fraction": data_meta["tuning_split"]["fraction"],
            "split_seed": data_meta["tuning_split"]["seed"],
        },
        "trials": rows,
        "storage": str(storage),
        "study": name,
    }


def tuned_field(record: dict, path: str | Path) -> dict:
    """What ``train.json`` carries under ``tuned`` when a job ran with tuned values: which values
    replaced the configured ones, and with what budget."""
    b = record["budget"]
    return {
        "from": str(path),
        "params": record["best"]["params"],
        "default": record["default"],
        "trials": b["trials"],
        "completed": b["completed"],
        "fair": b["fair"],
        "seed": b["seed"],
        "epochs_per_trial": b["epochs_per_trial"],
        "validation": f"{record['objective']['n_validation']} examples carved from train "
                      f"(fraction {record['objective']['fraction']}, seed {record['objective']['split_seed']})",
        "value": record["best"]["value"],
    }
