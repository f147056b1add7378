"""The figure check sees what a reader sees: overlapping text, the data's identifiers, hidden
markers; and the package's figure builders pass it."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from vlstudy import plots  # noqa: E402
from vlstudy.figure_check import defects, hidden_markers, overlapping_texts, raw_names  # noqa: E402


def test_each_defect_is_found_and_a_clean_figure_passes():
    fig, axes = plt.subplots(1, 2, figsize=(4, 2))
    axes[0].set_title("training = whole | task = vqa_d, a title far too long for its panel")
    axes[1].set_title("training = frozen base | task = vizwiz")
    assert overlapping_texts(fig) and raw_names(fig) == [
        "text 'training = whole | task = vqa_d, a title far too long for its panel' holds the identifier 'vqa_d'",
        "text 'training = frozen base | task = vizwiz' holds the identifier 'vizwiz'"]
    fig, ax = plt.subplots(figsize=(3, 3))
    ax.plot([1], [2], "o", ms=6, color="C0")
    ax.plot([1], [2], "s", ms=8, color="C1")                   # a larger marker of another colour on top
    ax.plot([2, 2], [3, 3], "o", color="C2")                  # one series twice at one point: one thing shown
    assert len(hidden_markers(fig)) == 1
    ax.text(0.05, 0.9, "COCO and VQA-P coincide", transform=ax.transAxes)
    assert hidden_markers(fig) == []
    fig, axes = plt.subplots(1, 2, figsize=(4, 2))             # a note covers only its own axes,
    for ax in axes:
        ax.plot([1], [2], "o", ms=4, color="C0")
        ax.plot([1.01], [2], "s", ms=12, color="C1")           # and a near marker that covers it counts
        ax.set(xlim=(0, 2), ylim=(0, 4))
    axes[0].text(0.05, 0.9, "these coincide", transform=axes[0].transAxes)
    assert len(hidden_markers(fig)) == 1
    fig, ax = plt.subplots(figsize=(3, 3))                      # hollow markers differ by their edge
    ax.plot([1], [2], "o", ms=6, color="C0", mfc="white")
    ax.plot([1], [2], "o", ms=6, color="C1", mfc="white")
    ax.set(xlim=(0, 2), ylim=(0, 4))
    twin = ax.twinx()                                           # and a twin axes overlays its host
    twin.set_ylim(ax.get_ylim())
    twin.plot([1.5], [2.5], "x", ms=4, color="C2")
    ax.plot([1.5], [2.5], "o", ms=3, color="C3")
    assert len(hidden_markers(fig)) == 2                        # the hollow one, and the dot under the twin's cross
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1], [0, 1], "o-")
    ax.set(title="VQA-D, whole model", xlabel="pretrained on", ylabel="test score")
    ax.set_xticks([0, 1], ["COCO", "CC-small"])
    assert defects(fig) == []
    plt.close("all")


def test_the_cell_and_line_figures_pass_the_check():
    rng = np.random.default_rng(0)
    rows = [{"arch": a, "pretrained_on": p, "task": t, "frozen": f, "block": b, "fraction": 1.0,
             "test_score": 55 + rng.normal(0, 2)}
            for a in ("visual_bert", "vilbert") for f in (False, True) for t in ("vqa_d", "vizwiz")
            for p in ("none", "coco", "vqa_p", "cc_small") for b in range(3 if p == "coco" else 1)]
    results = pd.DataFrame(rows)
    cells = plots.paper_values(plots.cell_intervals(results))
    assert cells["paper"].notna().all() and (cells["blocks"] == 3).sum() == 8
    fig = plots.cells_figure(cells, x="pretrained on", panels=["task name", "training"], hue="model",
                             order=["none", "COCO", "VQA-P", "CC-small"])
    assert defects(fig) == []
    texts = {t.get_text() for t in fig.findobj(matplotlib.text.Text)}
    assert {"one block: no interval", "the paper's number (right axis)", "VQA-D, frozen base"} <= texts
    with pytest.raises(ValueError, match="cells drawn at one place"):       # two cells per position: refused
        plots.cells_figure(cells, x="pretrained on", panels=["task name"], hue="model")
    lines = plots.lines_figure(plots.cell_intervals(results, by=("arch", "pretrained_on", "fraction")), x="fraction",
                               line=["pretrained on"], panels=["model"], xlabel="fraction", ylabel="VQA-D test score")
    assert defects(lines) == []
    same = results.assign(test_score=50.0)            # every set's line on one another: said, not hidden
    lines = plots.lines_figure(plots.cell_intervals(same, by=("arch", "pretrained_on", "fraction")), x="fraction",
                               line=["pretrained on"], panels=["model"], xlabel="fraction", ylabel="VQA-D test score")
    assert "coincide" in lines.axes[0].get_title() and defects(lines) == []
    plt.close("all")


def test_save_figure_refuses_a_defect_when_asked(tmp_path, monkeypatch):
    fig, ax = plt.subplots()
    ax.set_title("cc_small")
    monkeypatch.setenv("VLSTUDY_CHECK_FIGURES", "1")
    with pytest.raises(ValueError, match="not fit to show: text 'cc_small' holds the identifier 'cc_small'"):
        plots.save_figure(fig, "bad", tmp_path)
    assert not list(tmp_path.iterdir())
    monkeypatch.delenv("VLSTUDY_CHECK_FIGURES")
    assert all(p.exists() for p in plots.save_figure(fig, "bad", tmp_path))
    plt.close("all")
