"""The table's figure: bars = ours with spread, black ticks = paper, dashed = baseline, the scale in
the title, incomplete and failed cells marked, sweep rows labelled with their axis values."""
import csv

import matplotlib.pyplot as plt
from matplotlib.colors import to_hex

from harness.figures import INCOMPLETE_COLOUR, PARTIAL, draw_table, plot_table


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
