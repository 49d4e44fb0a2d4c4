"""Figures that need no training run (spectra of a pretrained model) or that read saved adapters.

* FourierMoE Fig. 1 (003), no training: (left) the power spectral density of a pretrained model's
  weights per layer; (right) the spectra of one layer's hidden representations per task.
  :func:`spectra` writes both CSVs and the two-panel figure.
* FRAME (002): the learned fractional order of every expert per layer, read from the saved
  adapters (``adapter.safetensors`` next to each job's ``eval.json``): :func:`frame_orders`.
* FourierMoE Fig. 5 (003): the distribution of every expert's spectral coefficients across layers,
  from a saved FourierMoE adapter: :func:`moe_coefficients`.

What a "PSD" is here (003 states no estimator; ours, stated): a weight matrix W (d_out x d_in) is
read as d_out signals of length d_in (its rows, each one output unit's input weights); the PSD is
``mean_rows |rfft(row)|^2 / d_in`` at the normalised frequencies ``k / d_in`` (cycles per input
unit, 0..0.5). A layer's PSD is the mean over its Linear weights whose input is the hidden state
(query, key, value, attention output, FFN input: every ``in_features == hidden_size``). A hidden
representation h (one token, length d) has the spectrum ``|rfft(h)|^2 / d`` averaged over the
non-padding tokens of the examples. Both are plotted on a log scale.

Each output table has a ``.meta.json`` with its provenance (model, tasks, files read, commit,
package versions). Command line: ``python -m harness.analysis {spectra,frame-orders,moe-coefficients} ...``
(the rules of rules/figures.smk call it).
"""
from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from adapters.io import load_tensors
from adapters.moe import FRAMEConfig
from harness.config import resolve_local_path
from harness.core.atomic import atomic_path, read_json, write_csv, write_json
from harness.core.errors import DataError
from harness.core.provenance import git_commit, provenance
from harness.core.sources import no_datasets_bars
from harness.models import ModelError, load_pretrained, load_tokenizer, resolve_pretrained
from harness.suites import get_suite

LAYER_RE = re.compile(r"\.(?:layer|layers|h|blocks?)\.(\d+)\.")
MODULE_RE = re.compile(r"\.([A-Za-z_0-9]+)\.(?:orders|coefficients)$")


# ----------------------------------------------------------------------------- spectra (no training)
def row_psd(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies k/d_in, PSD): the mean over rows of ``|rfft(row)|^2 / d_in`` (module docstring)."""
    w = np.asarray(w, dtype=np.float64)
    if w.ndim != 2:
        raise ValueError(f"row_psd needs a matrix, got shape {w.shape}")
    d_in = w.shape[1]
    power = (np.abs(np.fft.rfft(w, axis=1)) ** 2).mean(axis=0) / d_in
    return np.fft.rfftfreq(d_in), power


def token_spectrum(hidden: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(frequencies, mean power) of hidden states (B, T, d) along d, over tokens where ``mask`` is 1."""
    h = np.asarray(hidden, dtype=np.float64)
    d = h.shape[-1]
    power = np.abs(np.fft.rfft(h, axis=-1)) ** 2 / d  # (B, T, F)
    if mask is None:
        mask = np.ones(h.shape[:-1])
    m = np.asarray(mask, dtype=np.float64)[..., None]
    return np.fft.rfftfreq(d), (power * m).sum(axis=(0, 1)) / max(m.sum(), 1.0)


def layer_weight_psd(model) -> dict[int, np.ndarray]:
    """Layer index -> mean row PSD of the layer's Linear weights that read the hidden state."""
    import torch.nn as nn

    hidden = model.config.hidden_size
    per_layer: dict[int, list[np.ndarray]] = defaultdict(list)
    for name, mod in model.named_modules():
        m = LAYER_RE.search("." + name + ".")
        if m and isinstance(mod, nn.Linear) and mod.in_features == hidden:
            per_layer[int(m[1])].append(row_psd(mod.weight.detach().cpu().numpy())[1])
    if not per_layer:
        raise ValueError("no layer-indexed Linear weights with in_features == hidden_size found in the model")
    return {layer: np.mean(ps, axis=0) for layer, ps in sorted(per_layer.items())}


def task_examples(task: str, backbone: str, max_length: int, n_examples: int, data_dir: str | None = None) -> dict:
    """Tokenized validation examples of a text task (GLUE from the hub or ``data_dir``; mini tasks
    from their packages), the first ``n_examples`` of the split the harness evaluates on."""

    suite = get_suite("glue")
    spec = suite.task(task)
    cfg = {"data": {"max_length": max_length, "data_dir": data_dir}}

    with no_datasets_bars():
        raw, _ = suite.load_raw(spec, cfg, seed=0)
        raw = {"validation": raw["validation"].select(range(min(n_examples, len(raw["validation"]))))}
        dd, _ = suite.preprocess(spec, raw, cfg, backbone)
    return dd["validation"]


def hidden_spectra(model, tokenizer, examples_by_task: dict, layer: int, batch_size: int = 32) -> dict[str, np.ndarray]:
    """Task -> mean spectrum of ``hidden_states[layer]`` (the output of block ``layer``; 0 = embeddings)."""
    import torch

    out = {}
    model.eval()
    for task, ds in examples_by_task.items():
        num, den = None, 0.0
        for start in range(0, len(ds), batch_size):
            rows = ds[start:start + batch_size]
            keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in rows]
            batch = tokenizer.pad({k: rows[k] for k in keys}, return_tensors="pt")
            with torch.no_grad():
                hs = model(**batch, output_hidden_states=True).hidden_states
            if not 0 <= layer < len(hs):
                raise ValueError(f"layer {layer} out of range: the model has hidden states 0..{len(hs) - 1}")
            mask = batch["attention_mask"].numpy()
            _, p = token_spectrum(hs[layer].numpy(), mask)
            num = p * mask.sum() if num is None else num + p * mask.sum()
            den += float(mask.sum())
        out[task] = num / den
    return out


def _write_meta(csv_path: Path, scale: str, what: str, **facts) -> None:
    commit = git_commit()
    write_json(csv_path.with_suffix(".meta.json"), {
        "table": csv_path.stem, "title": what, "scale": scale, **facts,
        "produced_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": commit,
        "provenance": provenance(commit, code="harness/analysis.py"),
    })


def _save(fig, stem: Path) -> None:
    import matplotlib.pyplot as plt


    stem.parent.mkdir(parents=True, exist_ok=True)
    for suffix in (".png", ".pdf"):
        out = stem.with_suffix(suffix)
        with atomic_path(out) as tmp:
            fig.savefig(tmp, format=suffix[1:], dpi=150)
    plt.close(fig)


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def draw_spectra(weights: dict[int, np.ndarray], freqs_w: np.ndarray, hidden: dict[str, np.ndarray],
                 freqs_h: np.ndarray, title: str, layer: int):
    plt = _plt()
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    cmap = plt.get_cmap("viridis")
    n = max(len(weights) - 1, 1)
    for i, (lay, p) in enumerate(sorted(weights.items())):
        a.semilogy(freqs_w[1:], p[1:], color=cmap(i / n), lw=0.8, label=f"layer {lay}")
    a.set_xlabel("normalised frequency (cycles / input unit)")
    a.set_ylabel("PSD of weight rows")
    a.set_title("weights, per layer (DC omitted)")
    a.legend(fontsize=6, ncol=2)
    for task, p in hidden.items():
        b.semilogy(freqs_h[1:], p[1:], lw=1, label=task)
    b.set_xlabel("normalised frequency (cycles / hidden unit)")
    b.set_ylabel("power of hidden states")
    b.set_title(f"hidden states of layer {layer}, per task (DC omitted)")
    b.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig


def spectra(model_name: str, tasks: list[str], layer: int, max_length: int, n_examples: int, out_stem: Path,
            out_weights: Path, out_hidden: Path, scale: str, data_dir: str | None = None, name: str | None = None) -> None:
    """FourierMoE Fig. 1: weight PSD per layer and hidden-state spectra per task (module docstring)."""

    path = resolve_local_path(model_name) if model_name.startswith("pkg:") else resolve_pretrained(model_name)
    model = load_pretrained("AutoModel", path)
    tok = load_tokenizer(path)
    weights = layer_weight_psd(model)
    d = model.config.hidden_size
    fw = np.fft.rfftfreq(d)
    examples = {t: task_examples(t, path, max_length, n_examples, data_dir) for t in tasks}
    hidden = hidden_spectra(model, tok, examples, layer)
    write_csv(out_weights, [{"layer": lay, "frequency": f"{f:.6f}", "psd": f"{v:.6e}"}
                              for lay, p in weights.items() for f, v in zip(fw, p)])
    write_csv(out_hidden, [{"task": t, "layer": layer, "frequency": f"{f:.6f}", "power": f"{v:.6e}"}
                             for t, p in hidden.items() for f, v in zip(fw, p)])
    facts = {"model": model_name, "resolved": str(path), "hidden_size": d, "layers": len(weights)}
    _write_meta(out_weights, scale, "FourierMoE Fig. 1 (left): PSD of weight rows per layer", figure=out_stem.name, **facts)
    _write_meta(out_hidden, scale, f"FourierMoE Fig. 1 (right): spectra of layer-{layer} hidden states per task",
                figure=out_stem.name, **facts, tasks={t: len(examples[t]) for t in tasks}, max_length=max_length,
                data="validation split, first n examples (harness.suites glue loaders)")
    title = f"FourierMoE Fig. 1: spectra of {name or model_name} ({scale} scale)"
    _save(draw_spectra(weights, fw, hidden, fw, title, layer), out_stem)


# ----------------------------------------------------------------------------- saved adapters
def _adapter_files(evals: list[str]) -> list[tuple[dict, Path]]:
    """(eval record, adapter path) of every finished job among ``evals`` (failed jobs are skipped)."""
    out = []
    for e in evals:
        rec = read_json(e)
        adapter = Path(e).parent / "adapter.safetensors"
        if rec.get("status", "ok") == "ok" and adapter.is_file():
            out.append((rec, adapter))
    return out


def _where(name: str) -> tuple[int, str]:
    layer = LAYER_RE.search(name)
    module = MODULE_RE.search(name)
    return (int(layer[1]) if layer else -1), (module[1] if module else name.rsplit(".", 2)[0])


def read_orders(path: Path) -> list[dict]:
    """Rows (layer, module, expert, order) of a saved FRAME adapter (tensors named ``*.orders``)."""

    rows = []
    for name, t in sorted(load_tensors(path).items()):
        if name.endswith(".orders"):
            layer, module = _where(name)
            rows += [{"layer": layer, "module": module, "expert": e, "order": float(v)}
                     for e, v in enumerate(t.double().flatten().tolist())]
    if not rows:
        raise ValueError(f"{path}: no '*.orders' tensor: not a FRAME adapter")
    return rows


def draw_orders(rows: list[dict], title: str):
    plt = _plt()
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(3.6 * len(tasks), 4.2), squeeze=False)
    im = None
    for ax, task in zip(axes[0], tasks):
        mine = [r for r in rows if r["task"] == task]
        sites = sorted({(r["layer"], r["module"]) for r in mine})
        experts = sorted({r["expert"] for r in mine})
        grid = np.full((len(sites), len(experts)), np.nan)
        for i, s in enumerate(sites):
            for j, e in enumerate(experts):
                vals = [r["order"] for r in mine if (r["layer"], r["module"]) == s and r["expert"] == e]
                grid[i, j] = np.mean(vals) if vals else np.nan
        im = ax.imshow(grid, aspect="auto", cmap="coolwarm", vmin=0.0, vmax=1.0)
        ax.set_xticks(range(len(experts)), [f"e{e}" for e in experts])
        ax.set_yticks(range(len(sites)), [f"L{lay} {m}" for lay, m in sites], fontsize=6)
        ax.set_title(f"{task} (mean over {len({r['seed'] for r in mine})} seed(s))", fontsize=9)
        ax.set_xlabel("expert")
    fig.colorbar(im, ax=axes[0].tolist(), label="fractional order (0 = spatial / LoRA, 1 = Fourier)")
    fig.suptitle(title)
    return fig


def frame_orders(evals: list[str], out_stem: Path, out_csv: Path, scale: str, initial: list[float] | None = None) -> None:
    """FRAME (002): the learned order per expert and layer of every finished job, as a CSV
    (task, seed, layer, module, expert, order, change from the initial order) and heat maps per task."""

    rows = []
    files = _adapter_files(evals)
    if not files:
        raise ValueError("no finished FRAME job with an adapter.safetensors among the inputs")
    for rec, path in files:
        orders = read_orders(path)
        z = 1 + max(x["expert"] for x in orders)
        start = initial if initial is not None else FRAMEConfig(num_experts=z).initial_orders().tolist()
        for r in orders:
            rows.append({"task": rec["task"], "seed": rec["seed"], "variant": rec["variant"], **r,
                         "initial": start[r["expert"]], "change": r["order"] - start[r["expert"]]})
    write_csv(out_csv, rows)
    _write_meta(out_csv, scale, "FRAME: learned fractional orders per expert and layer", figure=out_stem.name,
                adapters=[str(p) for _, p in files])
    _save(draw_orders(rows, f"FRAME learned fractional orders ({scale} scale)"), out_stem)


def read_coefficients(path: Path) -> dict[tuple[int, str], np.ndarray]:
    """(layer, module) -> coefficients (Z, n) of a saved FourierMoE adapter: complex, or real for
    ``coefficients='real'`` (then |c| is the amplitude and the ``mean_imag`` column is 0)."""

    out = {}
    for name, t in sorted(load_tensors(path).items()):
        if name.endswith(".coefficients"):
            out[_where(name)] = t.detach().cpu().numpy()
    if not out:
        raise ValueError(f"{path}: no '*.coefficients' tensor: not a FourierMoE adapter")
    return out


def coefficient_rows(coefs: dict[tuple[int, str], np.ndarray]) -> list[dict]:
    rows = []
    for (layer, module), c in sorted(coefs.items()):
        for e, ce in enumerate(np.atleast_2d(c)):
            mag = np.abs(ce)
            rows.append({"layer": layer, "module": module, "expert": e, "n": mag.size,
                         "mean_abs": f"{mag.mean():.6g}", "median_abs": f"{np.median(mag):.6g}",
                         "q25_abs": f"{np.quantile(mag, 0.25):.6g}", "q75_abs": f"{np.quantile(mag, 0.75):.6g}",
                         "max_abs": f"{mag.max():.6g}", "mean_real": f"{np.real(ce).mean():.6g}",
                         "mean_imag": f"{np.imag(ce).mean():.6g}"})
    return rows


def draw_coefficients(coefs: dict[tuple[int, str], np.ndarray], title: str):
    plt = _plt()
    layers = sorted({lay for lay, _ in coefs})
    cols = min(4, len(layers))
    nrows = -(-len(layers) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(3.2 * cols, 2.6 * nrows), squeeze=False, sharey=True)
    for ax in axes.flat[len(layers):]:
        ax.axis("off")
    for ax, layer in zip(axes.flat, layers):
        per_expert = np.concatenate([np.abs(c) for (lay, _), c in sorted(coefs.items()) if lay == layer], axis=1)
        ax.boxplot(list(per_expert), showfliers=False)
        ax.set_title(f"layer {layer}", fontsize=9)
        ax.set_xlabel("expert", fontsize=8)
    axes[0, 0].set_ylabel("|coefficient|")
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


def moe_coefficients(evals: list[str], out_stem: Path, out_csv: Path, scale: str) -> None:
    """FourierMoE Fig. 5: per layer, the distribution of |coefficients| of each expert (modules of a
    layer pooled), from the first finished job among ``evals``; the CSV has every layer x module x
    expert's summary."""
    files = _adapter_files(evals)
    if not files:
        raise ValueError("no finished FourierMoE job with an adapter.safetensors among the inputs")
    rec, path = files[0]
    coefs = read_coefficients(path)
    write_csv(out_csv, [{"task": rec["task"], "seed": rec["seed"], "variant": rec["variant"], **r}
                          for r in coefficient_rows(coefs)])
    _write_meta(out_csv, scale, "FourierMoE Fig. 5: coefficient distributions per expert across layers",
                figure=out_stem.name, adapter=str(path))
    title = f"FourierMoE Fig. 5: |coefficients| per expert, {rec['variant']} on {rec['task']} seed {rec['seed']} ({scale} scale)"
    _save(draw_coefficients(coefs, title), out_stem)


# ----------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness analysis", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("spectra")
    s.add_argument("--model", required=True, help="hub id, folder, or pkg:<module>/<dir>")
    s.add_argument("--tasks", nargs="+", required=True)
    s.add_argument("--layer", type=int, required=True)
    s.add_argument("--max-length", type=int, default=128)
    s.add_argument("--n-examples", type=int, default=256)
    s.add_argument("--data-dir", default=None)
    s.add_argument("--name", default=None, help="the model's name in the title")
    for name in ("frame-orders", "moe-coefficients"):
        sp = sub.add_parser(name)
        sp.add_argument("--evals", nargs="+", required=True)
    for sp in sub.choices.values():
        sp.add_argument("--figure", required=True, help="figure path without suffix (.png and .pdf)")
        sp.add_argument("--csv", required=True)
        sp.add_argument("--scale", default="paper")
    s.add_argument("--hidden-csv", required=True)
    args = p.parse_args(argv)

    try:
        if args.cmd == "spectra":
            spectra(args.model, args.tasks, args.layer, args.max_length, args.n_examples, Path(args.figure),
                    Path(args.csv), Path(args.hidden_csv), args.scale, args.data_dir, args.name)
        elif args.cmd == "frame-orders":
            frame_orders(args.evals, Path(args.figure), Path(args.csv), args.scale)
        else:
            moe_coefficients(args.evals, Path(args.figure), Path(args.csv), args.scale)
    except (ModelError, DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0

