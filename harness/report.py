"""One self-contained HTML report of everything produced so far (opens from disk, no server).

First a summary, one row per table (harness/summary.py): its scale, its methods, the best method
per task, the flagged cells (failed, incomplete, diverged, inert adapter, selected on test, tuned
with the values chosen) and, at paper scale, how many cells reproduce the paper's value by the
stated rule (``harness.summary.AGREEMENT_RULE``). Then, for every ``tables/<table>.csv`` (a paper table, a sweep, or an analysis CSV of
harness/analysis.py): the scale it was produced at, our numbers next to the paper's (each task's
cell ``ours ± spread`` with ``paper`` and the difference), its figure (``figures/<table>.png``,
embedded as base64, with a link to the PDF), its trade-off plot (``figures/<table>_tradeoff.png``,
or drawn here from the CSV when the figures rule has not made it), its efficiency table (``tables/efficiency_<table>.csv``)
and the provenance of its numbers from ``tables/<table>.meta.json`` (config file and its text,
commit, whether the work tree was modified, package versions, the data recipe). Then the parameter
audit (``tables/params_audit.csv``) and any figure without a table. Mini tables say so in their
heading and never show paper values (the table builder leaves them empty).

``python -m harness report --tables tables --figures figures --out reports/mini.html``.
"""
from __future__ import annotations

import argparse
import base64
import csv
import datetime as dt
import html
import io
import json
from pathlib import Path

import matplotlib.pyplot as plt

from harness.core.atomic import atomic_path, read_json
from harness.figures import draw_tradeoff, table_metrics
from harness.summary import AGREEMENT_RULE, DIFFERS, KNOWN_FLAGS, NO_PAPER, REPRODUCED, cell_flags, agreement, summarize

ANALYSIS_NUMERIC_ROWS = 40  # analysis CSVs (spectra, orders) can be long: show their head, link the file

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:1.5em auto;max-width:1400px;color:#222}
h1{font-size:1.6em} h2{border-bottom:2px solid #4C72B0;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:12px;margin:.5em 0} td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
th{background:#eef2f8} td.l,th.l{text-align:left} .paper{color:#555} .neg{color:#b00} .pos{color:#070}
.scale{display:inline-block;padding:1px 8px;border-radius:8px;font-size:.8em;margin-left:.5em;color:#fff}
.mini{background:#DD8452} .paperscale{background:#4C72B0} img{max-width:100%;border:1px solid #ddd}
details{margin:.4em 0} pre{background:#f6f6f6;padding:.5em;font-size:11px;overflow:auto;max-height:30em}
nav a{margin-right:1em} .note{color:#555;font-size:.9em}
.flag{display:inline-block;padding:0 5px;border-radius:6px;font-size:10px;margin-left:3px;background:#f3d9c6;color:#7a3300}
.flag.bad{background:#b00;color:#fff} .v-reproduced{color:#070;font-weight:600} .v-differs{color:#b00;font-weight:600}
table.summary td{text-align:left;vertical-align:top} table.summary{font-size:13px;width:100%}
"""
BAD_FLAGS = ("failed", "diverged", "inert")  # drawn red: the cell's number (if any) is not a result of training


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _esc(x) -> str:
    return html.escape("" if x is None else str(x))


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    pdf = path.with_suffix(".pdf")
    link = f' <a href="{_esc(pdf.resolve().as_uri())}">PDF</a>' if pdf.is_file() else ""
    return f'<figure><img alt="{_esc(path.name)}" src="data:image/png;base64,{data}"><figcaption class="note">{_esc(path.name)}{link}</figcaption></figure>'


def _plain_table(rows: list[dict], limit: int | None = None) -> str:
    if not rows:
        return '<p class="note">(empty)</p>'
    cols = list(rows[0])
    shown = rows if limit is None else rows[:limit]
    head = "".join(f'<th class="l">{_esc(c)}</th>' for c in cols)
    body = "".join("<tr>" + "".join(f'<td class="l">{_esc(r.get(c))}</td>' for c in cols) + "</tr>" for r in shown)
    more = f'<p class="note">first {limit} of {len(rows)} rows</p>' if limit is not None and len(rows) > limit else ""
    return f"<table><tr>{head}</tr>{body}</table>{more}"


def _diff_class(x: str) -> str:
    try:
        return "neg" if float(x) < 0 else "pos"
    except ValueError:
        return ""


def _flag_badges(flags: list[str]) -> str:
    return "".join(f'<span class="flag{" bad" if f in BAD_FLAGS else ""}" title="{_esc(KNOWN_FLAGS.get(f, f))}">'
                   f"{_esc(f)}</span>" for f in flags if f not in ("failed", "incomplete"))  # those two are the cell's text


def results_table(rows: list[dict], tasks: list[str], axes: list[str], meta: dict | None = None) -> str:
    """Ours next to the paper's, one row per method (and axis value), one column per task; a cell's
    flags as badges and, at paper scale, its verdict against the paper (harness.summary)."""
    meta = meta or {}
    paper_scale = meta.get("scale") == "paper" or (rows and rows[0].get("scale") == "paper")
    head = ['<th class="l">method</th>', *[f"<th>{_esc(a)}</th>" for a in axes], "<th>params</th>",
            *[f"<th>{_esc(t)}<br><span class='note'>ours · paper · diff · seeds</span></th>" for t in tasks],
            "<th>avg<br><span class='note'>ours · paper</span></th>"]
    out = ["<table><tr>" + "".join(head) + "</tr>"]
    for r in rows:
        cells = [f'<td class="l">{_esc(r.get("label") or r.get("method"))}</td>',
                 *[f"<td>{_esc(r.get(a))}</td>" for a in axes], f"<td>{_esc(r.get('trainable_params'))}</td>"]
        for t in tasks:
            ours = r.get(t, "")
            spread = r.get(f"{t}_spread", "")
            if ours == "incomplete" and r.get(f"{t}_partial"):
                ours = f"incomplete ({r[f'{t}_partial']})"
            one_seed = (r.get(f"{t}_seeds") or "").startswith("1/")  # no spread exists: none is shown
            text = _esc(ours) + (f" ± {_esc(spread)}" if spread and not one_seed else "")
            paper = r.get(f"{t}_paper", "")
            if paper:
                ps = r.get(f"{t}_paper_spread", "")
                text += f' · <span class="paper">{_esc(paper)}{(" ± " + _esc(ps)) if ps else ""}</span>'
                d = r.get(f"{t}_diff", "")
                if d:
                    text += f' · <span class="{_diff_class(d)}">{_esc(d)}</span>'
            seeds = r.get(f"{t}_seeds", "")
            if seeds:
                text += f' <span class="note">[{_esc(seeds)}]</span>'
            if r.get("method") != "baseline":
                text += _flag_badges(cell_flags(r, t, meta))
                verdict = agreement(r, t) if paper_scale else None
                if verdict in (REPRODUCED, DIFFERS):
                    text += f' <span class="v-{verdict}">{verdict}</span>'
            cells.append(f"<td>{text}</td>")
        avg = _esc(r.get("avg", ""))
        if r.get("avg_paper"):
            avg += f' · <span class="paper">{_esc(r["avg_paper"])}</span>'
        cells.append(f"<td>{avg}</td>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "".join(out)


def _provenance(meta: dict, root: Path) -> str:
    prov = meta.get("provenance") or {}
    parts = [f"<li>produced at {_esc(meta.get('produced_at'))}, commit <code>{_esc(prov.get('commit') or meta.get('commit'))}</code>"
             + (" (work tree modified)" if prov.get("worktree_modified") else "") + "</li>"]
    if meta.get("scale_note"):
        parts.append(f"<li>scale: {_esc(meta.get('scale'))}: {_esc(meta['scale_note'])}</li>")
    for key in ("backbone", "model", "selection", "aggregate", "seeds"):
        if meta.get(key) is not None:
            parts.append(f"<li>{key}: {_esc(meta[key])}</li>")
    if meta.get("tasks"):
        parts.append(f"<li>data sizes: {_esc(json.dumps(meta['tasks']))}</li>")
    if prov.get("versions"):
        parts.append("<li>versions: " + ", ".join(f"{_esc(k)} {_esc(v)}" for k, v in prov["versions"].items()) + "</li>")
    if prov.get("data"):
        parts.append("<li>data recipe: <pre>" + _esc(json.dumps(prov["data"], indent=1)) + "</pre></li>")
    for key in ("adapter", "adapters"):
        if meta.get(key):
            parts.append(f"<li>{key}: {_esc(meta[key])}</li>")
    for variant, owners in (meta.get("shared_runs") or {}).items():
        parts.append(f"<li>{_esc(variant)}: the runs of {_esc(', '.join(owners))} (same settings, trained once)</li>")
    cfg = prov.get("config")
    body = "<ul>" + "".join(parts) + "</ul>"
    if cfg:
        path = Path(cfg) if Path(cfg).is_absolute() else root / cfg
        text = path.read_text() if path.is_file() else "(config file not found)"
        body += f"<details><summary>config <code>{_esc(cfg)}</code></summary><pre>{_esc(text)}</pre></details>"
    return f"<details><summary>provenance</summary>{body}</details>"


def _tasks_of(rows: list[dict], meta: dict) -> list[str]:
    if meta.get("tasks"):
        return list(meta["tasks"])
    return [c for c in (rows[0] if rows else {}) if f"{c}_seeds" in (rows[0] if rows else {})]


def _is_paper_table(rows: list[dict]) -> bool:
    return bool(rows) and "label" in rows[0] and "method" in rows[0]


def table_section(csv_path: Path, figures: Path, root: Path, shown: set | None = None) -> tuple[str, set[Path]]:
    """The HTML of one table (and the figures it used)."""
    name = csv_path.stem
    meta_path = csv_path.with_suffix(".meta.json")
    meta = read_json(meta_path) if meta_path.is_file() else {}
    rows = _read_csv(csv_path)
    is_paper_table = _is_paper_table(rows)
    scale = meta.get("scale") or (rows[0].get("scale") if rows else "") or "unknown"
    badge = f'<span class="scale {"mini" if scale == "mini" else "paperscale"}">{_esc(scale)} scale</span>'
    title = meta.get("title", "")
    html_ = [f'<h2 id="{_esc(name)}">{_esc(name)}{badge}</h2><p>{_esc(title)}</p>']
    if scale == "mini":
        html_.append('<p class="note">mini scale: CPU, small real data, a stand-in model; not comparable to the '
                     "papers' numbers (no paper values are shown).</p>")
    elif is_paper_table and not any(r.get(k) for r in rows for k in r if k.endswith("_paper")):
        html_.append('<p class="note">no paper values: the paper prints none for this table (docs/figures.md).</p>')
    used = set()
    if is_paper_table:
        html_.append(results_table(rows, _tasks_of(rows, meta), list(meta.get("axes") or []), meta))
    for stem in dict.fromkeys([name, *([meta["figure"]] if meta.get("figure") else [])]):
        fig = figures / f"{stem}.png"
        if fig.is_file() and fig in (shown or set()):
            html_.append(f'<p class="note">figure: {_esc(fig.name)}, shown above</p>')
        elif fig.is_file():
            html_.append(_img(fig))
            used.add(fig)
    if is_paper_table:
        html_.append(_tradeoff(csv_path, rows, meta, figures))
        used.add(figures / f"{name}_tradeoff.png")
    if not is_paper_table:
        html_.append(f"<details><summary>data ({_esc(csv_path.name)}, {len(rows)} rows)</summary>"
                     f"{_plain_table(rows, ANALYSIS_NUMERIC_ROWS)}</details>")
    eff = csv_path.parent / f"efficiency_{name}.csv"
    if eff.is_file():
        html_.append(f"<details><summary>efficiency ({_esc(eff.name)})</summary>{_plain_table(_read_csv(eff))}</details>")
    html_.append(_provenance(meta, root))
    return "".join(html_), used


def _tradeoff(csv_path: Path, rows: list[dict], meta: dict, figures: Path) -> str:
    """The table's trade-off plot: the figures rule's PNG when it exists, else drawn here (same function)."""
    png = figures / f"{csv_path.stem}_tradeoff.png"
    if png.is_file():
        return _img(png)
    eff = csv_path.parent / f"efficiency_{csv_path.stem}.csv"
    fig = draw_tradeoff(rows, _tasks_of(rows, meta), csv_path.stem, meta.get("axes") or (),
                        _read_csv(eff) if eff.is_file() else [], table_metrics(csv_path))
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=110)
    finally:
        plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f'<figure><img alt="{_esc(png.name)}" src="data:image/png;base64,{data}"><figcaption class="note">'
            f"trade-off (drawn by the report: {_esc(png.name)} not built)</figcaption></figure>")


def _list_cell(items: list[str], limit: int = 6) -> str:
    shown = "; ".join(_esc(i) for i in items[:limit])
    return shown + (f" <span class='note'>(+{len(items) - limit} more)</span>" if len(items) > limit else "")


def summary_section(csvs: list[Path]) -> str:
    """One row per paper table: scale, methods, best method per task, flagged cells, paper agreement."""
    head = ("<tr><th class='l'>table</th><th class='l'>scale</th><th class='l'>methods</th>"
            "<th class='l'>best per task</th><th class='l'>flagged cells</th><th class='l'>vs paper</th></tr>")
    body = []
    for p in csvs:
        rows = _read_csv(p)
        if not _is_paper_table(rows):
            continue
        meta_path = p.with_suffix(".meta.json")
        meta = read_json(meta_path) if meta_path.is_file() else {}
        s = summarize(p.stem, rows, meta, _tasks_of(rows, meta))
        labels = list(dict.fromkeys(r.get("label") or r["method"] for r in rows if r["method"] != "baseline"))
        methods = f"{len(s.methods)} rows: " + _list_cell(labels, 8)
        best = "<br>".join(f"{_esc(t)}: <b>{_esc(' = '.join(w))}</b> {v:.2f}" + _flag_badges(fl)
                           for t, (w, v, fl) in s.best.items()) or "<span class='note'>no complete cell</span>"
        flagged = [f"<span class='flag{' bad' if f in BAD_FLAGS else ''}'>{_esc(f)}</span> {len(c)}: {_list_cell(c, 4)}"
                   for f, c in s.flagged.items() if f != "tuned"]
        if s.tuned:
            flagged.append(f"<span class='flag'>tuned</span> {len(s.tuned)}: {_list_cell(s.tuned, 3)}")
        if s.scale != "paper":
            versus = "<span class='note'>not compared (mini scale)</span>"
        else:
            versus = " · ".join(f"<span class='v-{k.replace(' ', '-')}'>{len(s.verdicts.get(k, []))} {k}</span>"
                                for k in (REPRODUCED, DIFFERS, NO_PAPER))
            if s.verdicts.get(DIFFERS):
                versus += f"<br><span class='note'>differs: {_list_cell(s.verdicts[DIFFERS], 4)}</span>"
        badge = f'<span class="scale {"mini" if s.scale == "mini" else "paperscale"}">{_esc(s.scale)}</span>'
        body.append(f"<tr><td><a href='#{_esc(p.stem)}'>{_esc(p.stem)}</a><br><span class='note'>{_esc(s.title)}</span></td>"
                    f"<td>{badge}</td><td>{methods}</td><td>{best}</td>"
                    f"<td>{'<br>'.join(flagged) or '<span class=note>none</span>'}</td><td>{versus}</td></tr>")
    if not body:
        return ""
    return ("<h2 id='summary'>summary</h2><table class='summary'>" + head + "".join(body) + "</table>"
            f"<p class='note'>best per task: the highest complete cell of ours (ties: all). Flags: "
            + "; ".join(f"<b>{_esc(k)}</b>: {_esc(v)}" for k, v in KNOWN_FLAGS.items())
            + f". Agreement with the paper, {_esc(AGREEMENT_RULE)}</p>")


def build_report(tables: Path, figures: Path, out: Path, root: Path | None = None, scale: str | None = None) -> Path:
    """Write ``out``: every table in ``tables`` (not efficiency_*, not the audit) with its figure,
    efficiency table and provenance; the parameter audit; the remaining figures."""
    tables, figures, root = Path(tables), Path(figures), Path(root or Path.cwd())
    csvs = sorted(p for p in tables.glob("*.csv") if not p.name.startswith("efficiency_") and p.name != "params_audit.csv")
    sections, used = [], set()
    for p in csvs:
        s, u = table_section(p, figures, root, used)
        sections.append(s)
        used |= u
    audit = tables / "params_audit.csv"
    if audit.is_file():
        sections.append('<h2 id="params_audit">parameter audit</h2><p class="note">python -m harness audit: '
                        "every paper table's parameter count recomputed on weightless backbones.</p>"
                        + _plain_table(_read_csv(audit)))
    rest = [f for f in sorted(figures.glob("*.png")) if f not in used]
    if rest:
        sections.append('<h2 id="other_figures">other figures</h2>' + "".join(_img(f) for f in rest))
    nav = " ".join(f'<a href="#{_esc(p.stem)}">{_esc(p.stem)}</a>' for p in csvs)
    stamp = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    doc = (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>fourier-peft-bench report</title>"
           f"<style>{CSS}</style></head><body><h1>fourier-peft-bench: tables and figures"
           f"{(' (' + _esc(scale) + ' scale run)') if scale else ''}</h1>"
           f"<p class='note'>built {stamp} from {_esc(tables)} and {_esc(figures)}; {len(csvs)} tables. Each "
           "table states the scale it was produced at; paper values appear only at paper scale.</p>"
           f"{summary_section(csvs)}<nav>{nav}</nav>{''.join(sections)}</body></html>")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(doc, encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness report", description=__doc__.split("\n")[0])
    p.add_argument("--tables", default="tables")
    p.add_argument("--figures", default="figures")
    p.add_argument("--out", required=True)
    p.add_argument("--scale", default=None)
    args = p.parse_args(argv)
    print(f"[report] {build_report(Path(args.tables), Path(args.figures), Path(args.out), scale=args.scale)}")
    return 0

