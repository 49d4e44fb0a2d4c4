"""The one command line, ``python -m harness <subcommand>``: one subcommand per rule, explicit paths
in and out. ``analysis``, ``audit``, ``figures``, ``report`` and ``jobserver`` hand the rest of the line to their module's
own parser (``python -m harness analysis spectra ...``).

Bad input (config, task, method, data, model path) ends in one line ``error: ...`` and exit 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _table_cfg(args):
    from harness.config import load_table  # lazy: a subcommand imports only its own stage

    return load_table(args.config, args.scale)


def cmd_validate(args) -> None:
    from harness.config import validate_tuning  # lazy: a subcommand imports only its own stage

    cfg = _table_cfg(args)
    validate_tuning(cfg, args.config)
    print(f"{args.config}: ok ({cfg['_scale']} scale, {len(cfg['methods'])} methods x "
          f"{len(cfg['tasks'])} tasks x {len(cfg['seeds'])} seeds)")


def cmd_prep(args) -> None:
    from harness.config import backbone_path  # lazy: a subcommand imports only its own stage
    from harness.prepare import prepare  # lazy: a subcommand imports only its own stage

    cfg = _table_cfg(args)
    meta = prepare(cfg, args.task, Path(args.out), backbone_path(cfg), seed=0)
    print(f"[prep] {args.task}: {meta['n_train']} train / {meta['n_eval']} validation -> {args.out}")


def cmd_backbone(args) -> None:
    from harness.backbones import convert  # lazy: a subcommand imports only its own stage

    convert(args.converter, Path(args.out))
    print(f"[backbone] {args.converter} -> {args.out}")


def cmd_train(args) -> None:
    from harness.config import tuned_job_settings  # lazy: a subcommand imports only its own stage
    from harness.train import JobFailed, TrainingDiverged, train, write_failure  # lazy: a subcommand imports only its own stage

    cfg = _table_cfg(args)
    tuned, record = _tuned_record(args)
    s = tuned_job_settings(cfg, args.method, args.task, args.seed, record)
    out = Path(args.out)
    try:
        train(s, cfg, out_dir=out, checkpoint=Path(args.checkpoint), **_job_kwargs(args))
    except TrainingDiverged as e:  # a result of the recipe: recorded, the job succeeds
        print(f"error: training diverged: {e}; the table marks this run as diverged. It is what this recipe "
              f"gives: a changed setting reruns it by itself; to rerun it unchanged: snakemake <your options> "
              f"<target> --forcerun {out}/eval.json", file=sys.stderr)
        write_failure(out, s, str(e))
    except JobFailed as e:  # the environment's: nothing recorded, exit non-zero, retried
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    if record is not None:  # the table says which cells ran tuned values, and with what budget
        import json

        from harness.core.atomic import write_json  # lazy: a subcommand imports only its own stage
        from harness.tune import tuned_field  # lazy: a subcommand imports only its own stage

        for name in ("train.json", "eval.json"):  # eval.json: when the train step scores its own run
            if (out / name).is_file():
                job = json.loads((out / name).read_text())
                write_json(out / name, {**job, "tuned": tuned_field(record, tuned)})


def _tuned_record(args):
    """(path, record) of ``--tuned <json>`` (a tuning stage's result), or (None, None) when the
    option is absent or given without a file (the train rule passes an empty input when the
    method is not tuned)."""
    import json

    from harness.config import ConfigError  # lazy: a subcommand imports only its own stage

    if not args.tuned:
        return None, None
    if len(args.tuned) > 1:
        raise ConfigError(f"--tuned takes one file, got {len(args.tuned)}")
    path = Path(args.tuned[0])
    try:
        return path, json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"--tuned {path}: cannot read the tuning record ({e}); run the tune step first") from None


def _job_kwargs(args) -> dict:
    return dict(data_dir=Path(args.data), device=args.device, threads=args.threads)


def cmd_prep_tune(args) -> None:
    from harness.tune import prepare_tuning_data  # lazy: a subcommand imports only its own stage

    meta = prepare_tuning_data(args.data, args.out, fraction=args.fraction, seed=args.seed)
    print(f"[prep-tune] {meta['task']}: train' {meta['n_train']} / validation' {meta['n_eval']} "
          f"(carved from train, fraction {args.fraction}, seed {args.seed}) -> {args.out}")


def cmd_tune(args) -> None:
    from harness.tune import TuningFailed, run_tuning  # lazy: a subcommand imports only its own stage

    cfg = _table_cfg(args)
    try:
        rec = run_tuning(cfg, args.method, args.task, data_dir=args.data, storage=args.storage, out=args.out,
                         trials=args.trials, device=args.device, threads=args.threads)
    except TuningFailed as e:
        print(f"error: tuning failed: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    print(f"[tune] {args.method}/{args.task}: best {rec['best']['params']} -> {rec['best']['value']:.2f} "
          f"({rec['budget']['completed']}/{rec['budget']['trials']} trials) -> {args.out}")


def cmd_calibrate(args) -> None:
    from harness.core.atomic import write_json  # lazy: a subcommand imports only its own stage
    from harness.config import job_settings  # lazy: a subcommand imports only its own stage
    from harness.estimate import calibrate  # lazy: a subcommand imports only its own stage

    cfg = _table_cfg(args)
    s = job_settings(cfg, args.method, args.task, cfg["seeds"][0])
    write_json(Path(args.out), calibrate(s, cfg, **_job_kwargs(args)))


def cmd_estimate(args) -> None:
    import os

    from harness.core.atomic import write_json, write_text  # lazy: a subcommand imports only its own stage
    from harness.estimate import estimate, parallel_slots  # lazy: a subcommand imports only its own stage
    from harness.tables import load_jsons  # lazy: a subcommand imports only its own stage

    if args.analytic:
        return _estimate_analytic(args)
    if not (args.out and args.calibrations):
        raise SystemExit("error: estimate: --out and --calibrations are required without --analytic")
    cfg = _table_cfg(args)
    gpus = (cfg.get("resources", {}).get("train") or {}).get("gpus", 0)
    text, numbers = estimate(load_jsons(args.calibrations), len(cfg["seeds"]), gpus, parallel_slots(gpus, os.cpu_count() or 1))
    text = f"estimated cost of tables/{cfg['table']}.csv ({cfg['_scale']} scale), from measured step times:\n{text}\n"
    out = Path(args.out)
    write_text(out, text)
    write_json(out.with_suffix(".json"), numbers)
    print(text, end="")


def _estimate_analytic(args) -> None:
    """``estimate --analytic``: the bill from the configs alone (harness/cost.py); ``--config all``: every table."""
    from harness.core.atomic import write_json, write_text  # lazy: a subcommand imports only its own stage
    from harness.config import table_configs  # lazy: a subcommand imports only its own stage
    from harness.cost import bill  # lazy: a subcommand imports only its own stage

    paths = table_configs() if args.config == "all" else {Path(args.config).stem: Path(args.config)}
    text, rows = bill(paths, args.gpu, args.gpus, mfu=args.mfu, bandwidth_util=args.bandwidth_util,
                      generate_once=args.generate_once)
    if args.out:
        write_text(Path(args.out), text + "\n")
        write_json(Path(args.out).with_suffix(".json"), rows)
    print(text)


def cmd_eval(args) -> None:
    from harness.evaluate import evaluate_job  # lazy: a subcommand imports only its own stage

    rec = evaluate_job(Path(args.train_json), Path(args.out))
    print(f"[eval] {rec['variant']}/{rec['task']}/seed{rec['seed']}: {rec['status']} {rec.get('metric', '')}")


def cmd_profile(args) -> None:
    from harness.profiler import efficiency_rows, write_efficiency  # lazy: a subcommand imports only its own stage
    from harness.tables import load_runs  # lazy: a subcommand imports only its own stage

    cfg = _table_cfg(args)
    ref = next((v for v, m in cfg["methods"].items() if m["method"] == "lora"), None)
    write_efficiency(efficiency_rows(load_runs(args.profiles, cfg["table"]), ref_method=ref), Path(args.out))


def cmd_table(args) -> None:
    from harness.config import table_axes  # lazy: a subcommand imports only its own stage
    from harness.core.atomic import read_json  # lazy: a subcommand imports only its own stage
    from harness.figures import plot_sweep, plot_table  # lazy: a subcommand imports only its own stage
    from harness.tables import build_table, load_runs, write_table  # lazy: a subcommand imports only its own stage

    cfg = _table_cfg(args)
    metas = {m["task"]: m for m in map(read_json, args.data_meta)}
    evals = load_runs(args.evals, cfg["table"])
    for e in evals:  # sweep axes are configuration: every record gets its variant's
        e["axes"] = cfg["methods"].get(e["variant"], {}).get("axes", {})
    axes = table_axes(cfg)
    rows, scale = build_table(cfg, evals, metas, axes=axes)
    out = Path(args.out)
    write_table(rows, scale, out, out.with_suffix(".meta.json"))
    if args.figure:
        fig = Path(args.figure)
        title = f"{cfg['table']}: {cfg['title']}" if cfg["_scale"] == "paper" else f"{cfg['table']}: {cfg['backbone']['name']}"
        png, pdf = fig.with_suffix(".png"), fig.with_suffix(".pdf")
        if len(axes) == 1:
            plot_sweep(out, cfg["tasks"], axes[0], title, png, pdf, relative=cfg.get("figure", {}).get("relative", False))
        else:
            plot_table(out, cfg["tasks"], title, png, pdf, axes=axes)
    print(f"[table] {out} ({scale['scale']} scale, {len(rows) - 1} rows)")


def cmd_preflight(args) -> None:
    from harness.preflight import main_check  # lazy: a subcommand imports only its own stage

    problems = main_check(args.targets, args.config_dir, args.scale)
    for line in problems:
        print(f"preflight: {line}", file=sys.stderr)
    if problems:
        raise SystemExit(f"preflight: {len(problems)} problem(s): fix the config keys above before running")
    print(f"preflight: ok ({args.scale} scale)")


def _add_preflight(sub) -> None:
    sp = sub.add_parser("preflight", help="are the models and data of these targets' tables reachable (paper scale)")
    sp.add_argument("targets", nargs="*", help="tables/<table>.csv or table names (none: every table)")
    sp.add_argument("--config-dir", default=None, help="the table configs (default: the repository's config/)")
    sp.add_argument("--scale", default="paper", choices=["paper", "mini"])
    sp.set_defaults(fn=cmd_preflight)


def _estimate_parser(sp: argparse.ArgumentParser) -> None:
    """``estimate``: from calibrated steps (``--calibrations``) or from the configs alone (``--analytic``)."""
    sp.add_argument("--out")
    sp.add_argument("--calibrations", nargs="+", help="calibrate outputs (measured steps); not with --analytic")
    sp.add_argument("--analytic", action="store_true", help="FLOPs and bandwidth from the configs alone (--config all: every table)")
    sp.add_argument("--gpu", default="a100-80gb", help="with --analytic: a100-80gb (default) or h100-80gb")
    sp.add_argument("--gpus", type=int, default=8, help="with --analytic: GPUs for the wall-clock column (default 8)")
    sp.add_argument("--mfu", type=float, default=0.40, help="with --analytic: assumed share of peak bf16 FLOP/s")
    sp.add_argument("--bandwidth-util", type=float, default=0.70, help="with --analytic: assumed share of HBM bandwidth")
    sp.add_argument("--generate-once", action="store_true", help="with --analytic: cost one generation pass per run (default: as the suite selects)")
    sp.set_defaults(fn=cmd_estimate)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m harness", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True,
                           description=f"also: {', '.join(DELEGATED)} (each with its own --help)")

    def with_config(sp):
        sp.add_argument("--config", required=True, help="a table config, e.g. config/glue_base.yaml")
        sp.add_argument("--scale", default="paper", help="paper (default) or mini")
        return sp

    with_config(sub.add_parser("validate", help="check a config and exit")).set_defaults(fn=cmd_validate)
    sp = with_config(sub.add_parser("prep", help="load and preprocess one task once"))
    sp.add_argument("--task", required=True)
    sp.add_argument("--out", required=True)
    sp.set_defaults(fn=cmd_prep)
    sp = sub.add_parser("backbone", help="convert a package-shipped model once into a save_pretrained folder")
    sp.add_argument("--converter", required=True, help="a converter of harness/backbones.py")
    sp.add_argument("--out", required=True)
    sp.set_defaults(fn=cmd_backbone)
    sp = with_config(sub.add_parser("train", help="one backbone x method x task x seed"))
    sp.add_argument("--method", required=True, help="a method variant of the config (methods: key)")
    sp.add_argument("--task", required=True)
    sp.add_argument("--seed", type=int, required=True)
    sp.add_argument("--data", required=True, help="the prepared task folder")
    sp.add_argument("--out", required=True, help="the job's result folder")
    sp.add_argument("--checkpoint", required=True, help="resumable checkpoint file")
    sp.add_argument("--device", default="auto")
    sp.add_argument("--threads", type=int, default=None)
    sp.add_argument("--tuned", nargs="*", default=None, metavar="JSON",
                    help="a tuning record (tuning/<scale>/<table>/<method>/<task>.json): run its best values; "
                         "no file: the configured values")
    sp.set_defaults(fn=cmd_train)
    sp = sub.add_parser("prep-tune", help="carve train'/validation' out of a prepared task's TRAIN split for tuning")
    sp.add_argument("--data", required=True, help="the prepared task folder")
    sp.add_argument("--out", required=True, help="the carved folder (a prepared folder: train', validation')")
    sp.add_argument("--fraction", type=float, required=True, help="share of each stratum held out as validation'")
    sp.add_argument("--seed", type=int, required=True)
    sp.set_defaults(fn=cmd_prep_tune)
    sp = with_config(sub.add_parser("tune", help="random search of one method x task on a carved validation'"))
    sp.add_argument("--method", required=True)
    sp.add_argument("--task", required=True)
    sp.add_argument("--data", required=True, help="the carved folder written by prep-tune")
    sp.add_argument("--out", required=True, help="the tuning record (json)")
    sp.add_argument("--storage", required=True, help="Optuna journal file: finished trials, for resuming")
    sp.add_argument("--trials", type=int, default=None, help="the budget (default: the config's)")
    sp.add_argument("--device", default="auto")
    sp.add_argument("--threads", type=int, default=None)
    sp.set_defaults(fn=cmd_tune)
    sp = with_config(sub.add_parser("calibrate", help="time a few real steps of a job's settings"))
    sp.add_argument("--method", required=True)
    sp.add_argument("--task", required=True)
    sp.add_argument("--data", required=True)
    sp.add_argument("--out", required=True)
    sp.add_argument("--device", default="auto")
    sp.add_argument("--threads", type=int, default=None)
    sp.set_defaults(fn=cmd_calibrate)
    _estimate_parser(with_config(sub.add_parser("estimate", help="wall-clock and GPU-hours of a table before it runs")))
    sp = sub.add_parser("eval", help="score a job's best epoch")
    sp.add_argument("--train-json", required=True)
    sp.add_argument("--out", required=True)
    sp.set_defaults(fn=cmd_eval)
    sp = with_config(sub.add_parser("profile", help="collect job profiles into an efficiency table"))
    sp.add_argument("--out", required=True)
    sp.add_argument("profiles", nargs="+", help="VARIANT=profile.json of every run of the table")
    sp.set_defaults(fn=cmd_profile)
    sp = with_config(sub.add_parser("table", help="aggregate seeds into a paper table (+ figure)"))
    sp.add_argument("--out", required=True)
    sp.add_argument("--figure", default=None, help="figure path without suffix: writes .png and .pdf")
    sp.add_argument("--data-meta", nargs="+", required=True, help="meta.json of each prepared task")
    sp.add_argument("--evals", nargs="+", required=True,
                    help="VARIANT=eval.json of every run of the table (a run another table trained, under this table's variant)")
    sp.set_defaults(fn=cmd_table)
    _add_preflight(sub)
    return p


# subcommands with their own parser: name -> module whose ``main(argv)`` takes the rest of the line
DELEGATED = {"analysis": "harness.analysis", "audit": "harness.audit", "figures": "harness.figures",
             "report": "harness.report", "jobserver": "harness.jobserver"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] and argv[0] in DELEGATED:
        import importlib  # lazy: a subcommand imports only its own module (the job server's client starts without torch)

        return importlib.import_module(DELEGATED[argv[0]]).main(argv[1:])
    args = build_parser().parse_args(argv)
    from adapters.registry import MethodConfigError  # lazy: adapters imports torch; --help and the job server's client start without it
    from harness.config import ConfigError  # lazy: a subcommand imports only its own stage
    from harness.suites import DataError  # lazy: a subcommand imports only its own stage
    from harness.models import ModelError  # lazy: a subcommand imports only its own stage
    from adapters.io import AdapterFileError  # lazy: adapters imports torch
    from harness.core.errors import ArtifactError  # lazy, with the other error types

    try:
        args.fn(args)
    except (ConfigError, DataError, MethodConfigError, ModelError, ArtifactError, AdapterFileError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
