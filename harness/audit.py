"""Parameter-count audit: our trainable counts against every count the seed papers print.

Every row of ``config/paper_values/params.csv`` names a paper table, a backbone (a file stem of
``config/architectures/``), a method of the registry with the hyperparameters that set its size,
the modules it adapts, and the count exactly as printed with the paper's rounding. For each row
the audit builds the backbone from its config on the ``meta`` device (shapes only: no memory, a
13B model in about a second), applies the method through :func:`adapters.apply_method`, counts
``Adapted.num_trainable()`` (head excluded, as every table says), rounds it the way the paper
rounds, and compares. Explanations of mismatches are data (the CSV's ``note``), never code; no
count is typed in this file.

``count_scope`` (a column of the CSV) says what a printed count covers: ``total`` (the model,
the default), ``per_module`` (one adapted layer) or ``per_matrix`` (one of the two low-rank
factors of one adapted layer: FoRA Table 10). The audit divides our total by the number of
``nn.Linear`` modules the targets match (times 2 for ``per_matrix``) and says so.
``saving_vs:<flag>`` rows print a percentage, not a count: how much smaller the row's trainable
count is than the same method with the boolean hyperparameter ``<flag>`` set to true, i.e.
``100 (N(flag) - N(row)) / N(flag)`` (FAA's "freezing W_rff saves 32.1%": ``saving_vs:trainable_rff``).

``python -m harness audit --out tables/params_audit.csv`` writes the audit table atomically.
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from pathlib import Path
from typing import Callable, Iterable

import torch
from torch import nn

from adapters import MethodConfigError, apply_method, available_methods
from harness.core.atomic import write_csv

ROOT = Path(__file__).resolve().parents[1]
ARCH_DIR = ROOT / "config" / "architectures"
PAPER_VALUES = Path("config/paper_values/params.csv")
OUT_COLUMNS = ["source", "backbone", "method", "hparams", "ours", "ours_rounded", "paper", "match", "explanation"]
PARAMS_COLUMNS = [
    "source", "paper", "backbone", "method", "hparams", "target_modules", "count_scope",
    "printed", "printed_value", "unit_rounding", "note",
]
SCOPES = ("total", "per_module", "per_matrix")
SAVING = "saving_vs:"  # + a boolean hyperparameter: the printed value is a percentage saved


# --- architectures ---------------------------------------------------------------------------
def load_architecture(name: str, arch_dir: Path = ARCH_DIR) -> dict:
    """The JSON of ``config/architectures/<name>.json`` (model_type, auto_class, hub_id, config)."""
    path = Path(arch_dir) / f"{name}.json"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in Path(arch_dir).glob("*.json")))
        raise FileNotFoundError(f"no architecture {name!r} in {arch_dir} (known: {known})")
    spec = json.loads(path.read_text())
    for key in ("model_type", "auto_class", "hub_id", "config"):
        if key not in spec:
            raise ValueError(f"{path}: missing key {key!r}")
    return spec


def build_model(name: str, device: str | torch.device = "meta", arch_dir: Path = ARCH_DIR) -> tuple[nn.Module, dict]:
    """Build architecture ``name`` from its config without weights (on ``device``; ``meta`` by
    default). Returns ``(model, spec)``."""
    import transformers

    spec = load_architecture(name, arch_dir)
    cfg = transformers.AutoConfig.for_model(spec["model_type"], **spec["config"])
    auto = getattr(transformers, spec["auto_class"])
    with torch.device(device):
        model = auto.from_config(cfg)
    return model, spec


def head_modules_of(spec: dict) -> list[str]:
    if "head_modules" in spec:
        return list(spec["head_modules"])
    return ["lm_head"] if spec["auto_class"] == "AutoModelForCausalLM" else ["classifier"]


def count_target_linears(model: nn.Module, targets: Iterable[str]) -> int:
    """How many ``nn.Linear`` modules the dotted-suffix targets match (the registry's rule)."""
    targets = list(targets)
    return sum(
        1
        for name, mod in model.named_modules()
        if isinstance(mod, nn.Linear) and any(name == t or name.endswith("." + t) for t in targets)
    )


# --- the paper's rounding ----------------------------------------------------------------------
def parse_unit(unit: str) -> Decimal:
    """'0.001M' -> 1000, '1M' -> 1000000, '1' -> 1, '0.01K' -> 10."""
    unit = unit.strip()
    scale = Decimal(1)
    if unit[-1:] in ("M", "K", "B"):
        scale = {"K": Decimal(10**3), "M": Decimal(10**6), "B": Decimal(10**9)}[unit[-1]]
        unit = unit[:-1]
    return Decimal(unit) * scale


def round_to_unit(count: Fraction | int, unit: str) -> Decimal:
    """``count`` rounded half-up to a multiple of the unit, in parameters."""
    step = parse_unit(unit)
    value = Decimal(count.numerator) / Decimal(count.denominator) if isinstance(count, Fraction) else Decimal(count)
    return (value / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step


def format_like_paper(count: Fraction | int, unit: str, printed: str) -> str:
    """Our count written the way the paper writes its own (e.g. '0.02M' at unit 0.01M, '12,345' with
    separators, '32.1%' at unit 0.1)."""
    unit = unit.strip()
    rounded = round_to_unit(count, unit)
    if printed.endswith("%"):
        return f"{rounded:.{max(0, -rounded.as_tuple().exponent)}f}%"
    if unit.endswith("M"):
        decimals = max(0, -Decimal(unit[:-1]).as_tuple().exponent)
        return f"{rounded / Decimal(10**6):.{decimals}f}M"
    n = int(rounded)
    return f"{n:,}" if "," in printed else str(n)


# --- rows ------------------------------------------------------------------------------------
@dataclass
class ParamRow:
    source: str
    paper: str
    backbone: str
    method: str
    hparams: dict
    target_modules: list[str]
    count_scope: str
    printed: str
    printed_value: Decimal | None
    unit_rounding: str
    note: str

    @property
    def hparams_json(self) -> str:
        return json.dumps(self.hparams, sort_keys=True)


def read_paper_values(path: Path = PAPER_VALUES) -> list[ParamRow]:
    """Read and check ``params.csv``; raises ValueError naming the line of a malformed row."""
    path = Path(path)
    if not path.is_absolute() and not path.exists():
        path = ROOT / path
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in PARAMS_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: missing columns {missing}")
        for line, raw in enumerate(reader, start=2):
            try:
                scope = raw["count_scope"].strip() or "total"
                if scope not in SCOPES and not (scope.startswith(SAVING) and scope[len(SAVING):]):
                    raise ValueError(f"count_scope {scope!r} not in {SCOPES} nor '{SAVING}<hyperparameter>'")
                value = raw["printed_value"].strip()
                if value and not raw["unit_rounding"].strip():
                    raise ValueError("a printed_value needs a unit_rounding")
                rows.append(
                    ParamRow(
                        source=raw["source"].strip(),
                        paper=raw["paper"].strip(),
                        backbone=raw["backbone"].strip(),
                        method=raw["method"].strip(),
                        hparams=json.loads(raw["hparams"] or "{}"),
                        target_modules=json.loads(raw["target_modules"] or "[]"),
                        count_scope=scope,
                        printed=raw["printed"].strip(),
                        printed_value=Decimal(value) if value else None,
                        unit_rounding=raw["unit_rounding"].strip(),
                        note=raw["note"].strip(),
                    )
                )
            except (ValueError, json.JSONDecodeError) as e:
                raise ValueError(f"{path}:{line}: {e}") from e
    return rows


def _apply(row: ParamRow, hparams: dict | None = None):
    """Build the row's backbone on ``meta`` and apply its method, first with the whole call under
    ``torch.device('meta')`` (peft allocates its adapter tensors on the default device: on the CPU
    that costs seconds for a 7B model), then, if that fails (e.g. a CPU ``torch.Generator`` used
    with the default device), as a plain call (our methods build their tensors on the CPU and
    move them to the base weight's device)."""
    hparams = row.hparams if hparams is None else hparams
    errors = []
    for under_meta in (True, False):
        model, spec = build_model(row.backbone)
        n_targets = count_target_linears(model, row.target_modules)
        try:
            if under_meta:
                with torch.device("meta"):
                    adapted = apply_method(model, row.method, hparams, target_modules=row.target_modules or None,
                                           head_modules=head_modules_of(spec), seed=0)
            else:
                adapted = apply_method(model, row.method, hparams, target_modules=row.target_modules or None,
                                       head_modules=head_modules_of(spec), seed=0)
            return adapted, n_targets
        except Exception as e:  # noqa: BLE001 - reported in the row
            if isinstance(e, MethodConfigError):
                raise
            errors.append(f"{type(e).__name__}: {e}")
    raise RuntimeError(" / ".join(errors))


def audit_row(row: ParamRow, available: set[str]) -> dict:
    out = {"source": row.source, "backbone": row.backbone, "method": row.method, "hparams": row.hparams_json,
           "ours": "", "ours_rounded": "", "paper": row.printed, "match": "", "explanation": ""}
    comparable = row.printed_value is not None
    if not row.method or not row.backbone:
        out.update(match="n/a", explanation=row.note or "no method/backbone to audit")
        return out
    if row.method not in available:
        out.update(match="pending" if comparable else "n/a",
                   explanation=f"method {row.method!r} is not registered yet; " + (row.note if not comparable else ""))
        return out
    try:
        adapted, n_targets = _apply(row)
    except Exception as e:  # noqa: BLE001 - an audit row records the failure instead of stopping the audit
        out.update(match="error" if comparable else "n/a", explanation=f"apply failed: {str(e).splitlines()[0][:300]}")
        return out
    total = adapted.num_trainable()
    count: Fraction | int = total
    scope_text = ""
    if row.count_scope.startswith(SAVING):
        flag = row.count_scope[len(SAVING):]
        try:
            with_flag = _apply(row, {**row.hparams, flag: True})[0].num_trainable()
        except Exception as e:  # noqa: BLE001 - recorded in the row
            reason = str(e).splitlines()[0][:300]
            out.update(match="error", explanation=f"apply with {flag}=true failed: {reason}")
            return out
        count = Fraction(100 * (with_flag - total), with_flag)
        scope_text = f"[% saved: {with_flag:,} trainable with {flag}=true, {total:,} without] "
    elif row.count_scope != "total":
        if n_targets == 0:
            out.update(match="error", explanation=f"count_scope {row.count_scope} but targets {row.target_modules} match no Linear")
            return out
        per = n_targets * (2 if row.count_scope == "per_matrix" else 1)
        count = Fraction(total, per)
        if count.denominator == 1:
            count = int(count)
        what = "2 x " + str(n_targets) if row.count_scope == "per_matrix" else str(n_targets)
        scope_text = f"[{row.count_scope}: our model total {total:,} / ({what} modules)] "
    out["ours"] = str(count) if isinstance(count, int) else f"{float(count):.3f}"
    if not comparable:
        out.update(match="n/a", explanation=scope_text + row.note)
        return out
    out["ours_rounded"] = format_like_paper(count, row.unit_rounding, row.printed)
    printed_rounded = round_to_unit(Fraction(row.printed_value), row.unit_rounding)
    ok = round_to_unit(count, row.unit_rounding) == printed_rounded
    out["match"] = "yes" if ok else "no"
    # A mismatch must be explained by the data (the note); an empty note leaves it empty so tests catch it.
    out["explanation"] = (scope_text + row.note).strip() if (row.note or ok) else ""
    return out


def _timed_row(row: ParamRow, available: set[str]) -> tuple[dict, float]:
    t0 = time.perf_counter()
    return audit_row(row, available), time.perf_counter() - t0


def audit(
    out_csv: Path,
    paper_values: Path = PAPER_VALUES,
    *,
    select: Callable[[ParamRow], bool] | None = None,
    log: Callable[[str], None] | None = print,
    jobs: int = 1,
) -> list[dict]:
    """Audit every row of ``paper_values`` (or those ``select`` keeps); write ``out_csv``
    atomically and return the rows written. ``jobs > 1`` audits rows in that many worker
    processes (results and progress lines stay in the CSV's order)."""
    available = set(available_methods())
    rows = [r for r in read_paper_values(paper_values) if select is None or select(r)]
    results = []
    t_start = time.perf_counter()

    def report(i: int, row: ParamRow, res: dict, seconds: float) -> None:
        if log:
            log(
                f"[{i:3d}/{len(rows)}] {res['match']:7s} {row.source:14s} {row.backbone:28s} {row.method or '-':16s} "
                f"{res['hparams']:34s} ours={res['ours_rounded'] or res['ours'] or '-':>10s} paper={row.printed or '-':>10s} "
                f"({seconds:.1f}s)"
            )

    if jobs > 1 and len(rows) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            for i, (row, (res, seconds)) in enumerate(zip(rows, pool.map(_timed_row, rows, [available] * len(rows))), 1):
                results.append(res)
                report(i, row, res, seconds)
    else:
        for i, row in enumerate(rows, 1):
            res, seconds = _timed_row(row, available)
            results.append(res)
            report(i, row, res, seconds)
    if log:
        log(f"audited {len(rows)} rows in {time.perf_counter() - t_start:.1f}s ({summarize(results)})")
    out_csv = Path(out_csv)
    write_csv(out_csv, results, OUT_COLUMNS)
    return results


def summarize(results: list[dict]) -> str:
    from collections import Counter

    c = Counter(r["match"] for r in results)
    return ", ".join(f"{k}: {v}" for k, v in sorted(c.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("tables/params_audit.csv"))
    parser.add_argument("--paper-values", type=Path, default=PAPER_VALUES)
    parser.add_argument("--source", action="append", default=None,
                        help="only rows whose source contains this text (repeatable)")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes (rows are independent)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    select = None
    if args.source:
        select = lambda r: any(s in r.source for s in args.source)  # noqa: E731
    results = audit(args.out, args.paper_values, select=select, log=None if args.quiet else print,
                    jobs=args.jobs)
    print(f"wrote {args.out} ({len(results)} rows; {summarize(results)})")
    return 1 if any(r["match"] == "error" for r in results) else 0

