"""Figure conventions: one theme, and every figure saved as PNG and PDF, byte-stable."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path

import matplotlib as mpl
import seaborn as sns


def set_theme() -> None:
    sns.set_theme(context="paper", style="ticks", palette="colorblind")
    mpl.rcParams.update({"pdf.fonttype": 42, "svg.hashsalt": "vlstudy", "figure.dpi": 100,
                         "savefig.dpi": 200})


def save_figure(fig, name: str, out_dir: Path) -> list[Path]:
    """``name``.png and .pdf in ``out_dir``. With ``VLSTUDY_CHECK_FIGURES`` set (the tests),
    a figure with overlapping text, a data identifier or a hidden marker is refused
    (``figure_check``)."""
    if os.environ.get("VLSTUDY_CHECK_FIGURES"):
        from .figure_check import defects
        found = defects(fig)
        if found:
            raise ValueError(f"figure {name!r} is not fit to show: " + "; ".join(found))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.{ext}" for ext in ("png", "pdf")]
    fig.savefig(paths[0], bbox_inches="tight")
    fig.savefig(paths[1], bbox_inches="tight", metadata={"CreationDate": None})
    return paths


OUTCOME_COLOURS = {"holds": "#1b7837", "reversed": "#b2182b", "fails": "#b2182b", "against": "#b2182b",
                   "undecided": "#777777"}


def forest(comparisons, title: str = ""):
    """Every comparison's difference (claimed side − other side) and 95 % interval, one panel
    per unit. The paper's direction is to the right of 0 (shaded) for every row: each
    comparison is written with the side the paper claims higher first. Colour: what the
    comparison counts as in its claim's logic (``for the claim``: holding at 5 % where the claim
    needs all, after Holm where it needs most; against after Holm), else its outcome after Holm."""
    import matplotlib.pyplot as plt
    import numpy as np

    units = list(dict.fromkeys(comparisons["unit"]))
    heights = [max(1, (comparisons["unit"] == u).sum()) for u in units]
    fig, axes = plt.subplots(len(units), 1, figsize=(8, 0.9 + 0.22 * sum(heights) + 0.5 * len(units)),
                             gridspec_kw={"height_ratios": heights}, squeeze=False)
    for ax, unit in zip(axes[:, 0], units):
        rows = comparisons[comparisons["unit"] == unit].reset_index(drop=True)
        y = np.arange(len(rows))[::-1]
        for yi, (_, r) in zip(y, rows.iterrows()):
            judged = r.get("for the claim")
            colour = OUTCOME_COLOURS.get(judged if isinstance(judged, str) else r.get("after Holm", r["outcome"]),
                                         "#777777")
            if r["low"] == r["low"]:                      # not NaN: an interval
                ax.plot([r["low"], r["high"]], [yi, yi], color=colour, lw=1.5)
            ax.plot(r["difference"], yi, "o", color=colour, ms=4)
        ax.axvline(0, color="black", lw=0.8)
        right = max(1e-9, float(np.nanmax(np.abs(rows[["low", "high", "difference"]].to_numpy(float)))))
        ax.axvspan(0, right * 1.05, color="#1b7837", alpha=0.06, lw=0)
        ax.set_yticks(y, [f"{r['claim']} {r['comparison']}" for _, r in rows.iterrows()], fontsize=6)
        ax.set_xlabel(f"difference ({unit}); paper's direction → (green: holds for its claim, red: against it "
                      "after Holm, grey: undecided)", fontsize=7)
        ax.tick_params(axis="x", labelsize=7)
    if title:
        axes[0, 0].set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def drift_heatmaps(per_layer, archs, sources, fmt: str = ".2g"):
    """Weight drift by layer (Fig. 5, C.2-C.3): a row of two heat maps (L1, angular) per model,
    one row of cells per pretraining source. ``per_layer``: mean ``l1`` / ``angular`` per
    (arch, pretrained_on, layer)."""
    import matplotlib.pyplot as plt

    from .sides import MODEL_NAMES, source_name
    fig, axes = plt.subplots(len(archs), 2, figsize=(9, len(archs) * (0.8 + 0.4 * len(sources))), squeeze=False)
    for row, arch in enumerate(archs):
        for col, measure in enumerate(("l1", "angular")):
            grid = (per_layer[per_layer["arch"] == arch].pivot(index="pretrained_on", columns="layer", values=measure)
                    .reindex(sources).rename(index=source_name))
            sns.heatmap(grid, ax=axes[row, col], cmap="Blues", annot=True, fmt=fmt, cbar=False)
            axes[row, col].set(title=f"{MODEL_NAMES[arch]}: {measure}", xlabel="layer", ylabel="")
            axes[row, col].tick_params(axis="y", rotation=0)
    fig.tight_layout()
    return fig


# --- figures in the paper's names -------------------------------------------------------------
TRAINING_NAMES = {False: "whole model", True: "frozen base"}
PAPER_TABLES = {False: "table1_finetune", True: "table2_frozen_base"}   # the paper's tables by training
PAPER_COLUMNS = {"vqa_d": "vqa_d_acc", "vizwiz": "vizwiz_acc", "snli_ve": "snli_ve_acc", "mmimdb": "mmimdb_micro_f1"}


def named(frame):
    """``frame`` with display columns beside the data's: ``model`` (VisualBERT), ``pretrained
    on`` (CC-small), ``task name`` (VQA-D) and ``training`` (whole model, frozen base), from
    ``arch``, ``pretrained_on``, ``task`` and ``frozen`` where present."""
    from .sides import MODEL_NAMES, TASK_NAMES, source_name
    out = frame.copy()
    if "arch" in out:
        out["model"] = out["arch"].map(lambda a: MODEL_NAMES.get(a, a))
    if "pretrained_on" in out:
        out["pretrained on"] = out["pretrained_on"].map(source_name)
    if "task" in out:
        out["task name"] = out["task"].map(lambda t: TASK_NAMES.get(t, t))
    if "frozen" in out:
        out["training"] = out["frozen"].fillna(False).astype(bool).map(TRAINING_NAMES)
    return out


def cell_intervals(results, examples=None, metric: str = "test_score",
                   by=("arch", "pretrained_on", "task", "frozen")):
    """Per cell: the mean over blocks, the number of blocks and, from 2 blocks, the study's 95 %
    interval of the cell's mean (blocks plus test sampling: ``stats.mean_interval``)."""
    import numpy as np
    import pandas as pd

    from . import stats
    rows = []
    by = [c for c in by if c in results]
    for key, cell in results.groupby(by, sort=False, dropna=False):
        per_example = None
        if examples is not None and metric == "test_score" and "run" in cell:
            arrays = [examples(run) for run in cell["run"]]
            if all(a is not None for a in arrays) and len({len(a) for a in arrays}) == 1:
                per_example = np.stack(arrays)
        blocks = (cell["block"] if "block" in cell else cell["seed"]).to_numpy(int)
        arm = stats.Arm.of(blocks, cell[metric].to_numpy(float), per_example)
        interval = stats.mean_interval(arm) if len(arm.block_ids) >= 2 else None
        rows.append({**dict(zip(by, key if isinstance(key, tuple) else (key,))), "mean": arm.mean,
                     "blocks": len(arm.block_ids), "low": interval.low if interval else float("nan"),
                     "high": interval.high if interval else float("nan")})
    return pd.DataFrame(rows)


def paper_values(cells, tables=None, rename=None):
    """The paper's number for each cell it reports, or NaN: a column ``paper`` beside ``cells``.
    ``tables``: paper tables to look in, in order (default: Table 1 for whole-model cells,
    Table 2 for frozen-base ones); ``rename``: our set → the row the paper has for it (Table
    D.1 has one CC row, where our CC-small stands)."""
    import numpy as np

    from .paper import table as paper_table
    from .sides import MODEL_NAMES, source_name
    out = cells.copy()
    rename = rename or {}
    values = []
    for _, cell in out.iterrows():
        frozen = cell.get("frozen", False)
        frozen = bool(frozen) if frozen == frozen else False          # a missing value is whole-model
        names = tables if tables is not None else [PAPER_TABLES[frozen]]
        column, found = PAPER_COLUMNS.get(cell["task"]), np.nan
        row_name = rename.get(cell["pretrained_on"], source_name(cell["pretrained_on"]))
        for name in names:
            paper = paper_table(name)
            match = paper[(paper["model"] == MODEL_NAMES.get(cell["arch"], cell["arch"]))
                          & (paper["pretrained_on"] == row_name)]
            if column in paper and len(match):
                found = float(match[column].iloc[0])
                break
        values.append(found)
    out["paper"] = values
    return out


def cells_figure(cells, x: str, panels: list[str], hue: str | None = None, order=None, ylabel: str = "test score",
                 paper: bool = True, panel_width: float = 2.9, panel_height: float = 2.6):
    """One panel per value of ``panels`` (display columns of ``named(cells)``, e.g. task name
    and training), one marker per ``x`` value (dodged by ``hue``): the cell's mean over blocks
    with its study's 95 % interval where it has 2 or more blocks, a hollow marker where it has
    one (the legend says "one block"). Where the paper reports the cell, its number is drawn
    beside ours as a black cross on a right-hand axis of its own, labelled "paper" (its scale
    is not ours: a real dataset against the synthetic world). ``cells``: ``cell_intervals``
    rows (with ``paper`` from ``paper_values`` when ``paper``)."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.lines import Line2D

    shown = named(cells)
    _one_cell_each(shown, panels + [x] + ([hue] if hue else []))
    keys = list(dict.fromkeys(map(tuple, shown[panels].to_numpy().tolist())))
    columns = min(len(keys), 4)
    rows = int(np.ceil(len(keys) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(panel_width * columns + 0.6, panel_height * rows + 0.9),
                             squeeze=False, layout="constrained")
    order = list(order) if order is not None else list(dict.fromkeys(shown[x]))
    levels = list(dict.fromkeys(shown[hue])) if hue else [None]
    palette = sns.color_palette("colorblind", len(levels))
    width = 0.5 if len(levels) > 1 else 0.0
    offsets = np.linspace(-width / 2, width / 2, len(levels)) if len(levels) > 1 else [0.0]
    any_single = any_paper = False
    for ax, key in zip(axes.flat, keys):
        panel = shown[(shown[panels].apply(tuple, axis=1)) == key]
        here = [o for o in order if o in set(panel[x])]          # the panel's own cells, in the order given
        twin = None
        for level, colour, offset in zip(levels, palette, offsets):
            part = panel if level is None else panel[panel[hue] == level]
            for _, cell in part.iterrows():
                if cell[x] not in here:
                    continue
                position = here.index(cell[x]) + offset
                single = cell["blocks"] < 2
                any_single |= single
                if not single:
                    ax.errorbar(position, cell["mean"], yerr=[[cell["mean"] - cell["low"]], [cell["high"] - cell["mean"]]],
                                color=colour, capsize=2, lw=1.2, zorder=2)
                ax.plot(position, cell["mean"], "o", ms=6, color=colour, mfc="white" if single else colour, zorder=3)
                reported = cell["paper"] if paper and "paper" in cell else float("nan")
                if reported == reported:                                  # not NaN: the paper reports it
                    twin = twin or ax.twinx()
                    twin.plot(position + 0.18, reported, "x", ms=6, mew=1.5, color=colour, zorder=3)
                    any_paper = True
        ax.set_xticks(range(len(here)), [textwrap.fill(str(o), 10) for o in here])     # long names on two lines
        ax.set_xlim(-0.6, len(here) - 0.4)
        ax.tick_params(axis="x", labelsize=8 if max(len(str(o)) for o in here) <= 8 else 7)
        ax.tick_params(axis="y", labelsize=8)
        ax.set_title(", ".join(map(str, key)), fontsize=9)
        ax.set_ylabel(ylabel if ax in axes[:, 0] else "", fontsize=8)
        if twin is not None:
            twin.tick_params(axis="y", labelsize=7, colors="#444444")
            twin.set_ylabel("paper" if ax in axes[:, -1] or ax is axes.flat[len(keys) - 1] else "", fontsize=8)
    for ax in axes.flat[len(keys):]:
        ax.set_visible(False)
    handles = [Line2D([], [], marker="o", ls="none", color=c, label=str(level)) for level, c in zip(levels, palette)
               if level is not None]
    if (shown["blocks"] >= 2).any():
        handles.append(Line2D([], [], marker="o", ls="none", color="grey", label="95 % interval: blocks + test sampling"))
    if any_single:
        handles.append(Line2D([], [], marker="o", ls="none", color="grey", mfc="white", label="one block: no interval"))
    if any_paper:
        handles.append(Line2D([], [], marker="x", ls="none", color="grey", mew=1.5,
                              label="the paper's number (right axis)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=min(len(handles), 3), fontsize=8, frameon=False)
    return fig


# where a world's images come from (``describe``), by the datasets they stand for
IMAGE_SOURCES = {"cc": "CC", "coco": "COCO", "flickr": "Flickr", "poster": "posters", "vizwiz": "VizWiz"}


def display_name(name: str, images: bool = False) -> str:
    """The paper's name of a model, pretraining set or task ("vqa_d" → "VQA-D"), or with
    ``images`` of an image source ("cc" → "CC"); other names as they are."""
    from .sides import MODEL_NAMES, SOURCE_NAMES, TASK_NAMES
    if images:
        return IMAGE_SOURCES.get(name, name)
    return MODEL_NAMES.get(name) or TASK_NAMES.get(name) or SOURCE_NAMES.get(name) or name


def coinciding(ax, points, names: list[str], size: float, near: float = 1.0) -> list[str]:
    """"A and B coincide" for each pair of ``points`` (data coordinates, one row each) drawn
    closer than ``near`` widths of a marker of ``size`` points² in ``ax``: the note a figure needs
    where one marker would hide another (figure_check). Call it after ``fig.canvas.draw()`` on the
    final layout: the axes' limits then say where the markers land."""
    return [f"{names[i]} and {names[j]} coincide" for i, j in _touching(ax, points, size, near)]


def _touching(ax, points, size: float, near: float = 1.0) -> list[tuple[int, int]]:
    """The pairs (i < j) of ``points`` (data coordinates) that ``ax`` draws closer than ``near``
    widths of a marker of ``size`` points²: where one marker hides the other."""
    import numpy as np

    at = ax.transData.transform(np.asarray(points, dtype=float))
    marker_px = np.sqrt(size) * ax.figure.dpi / 72
    return [(i, j) for i in range(len(at)) for j in range(i + 1, len(at))
            if np.hypot(*(at[i] - at[j])) < near * marker_px]


def similarity_plane(similarity, near: float = 1.0):
    """The paper's Fig. 2 plane, measured: one panel per downstream task, each pretraining set
    at its (visual, textual) similarity to it. Sets closer than ``near`` marker widths would
    hide one another; the panel says which coincide."""
    import matplotlib.pyplot as plt

    targets = list(dict.fromkeys(similarity["target"]))
    sources = list(dict.fromkeys(similarity["source"]))
    markers = dict(zip(sources, "osD^vP*"))
    colours = dict(zip(sources, sns.color_palette("colorblind", len(sources))))
    fig, axes = plt.subplots(1, len(targets), figsize=(2.9 * len(targets) + 0.4, 3.4), squeeze=False,
                             layout="constrained", sharex=True, sharey=True)
    size = 60                                          # points², each set's marker
    for ax, target in zip(axes[0], targets):
        panel = similarity[similarity["target"] == target].reset_index(drop=True)
        for _, row in panel.iterrows():
            ax.scatter(row["visual"], row["textual"], s=size, marker=markers[row["source"]], color=colours[row["source"]],
                       edgecolors="black", linewidths=0.5, zorder=3)
    fig.canvas.draw()
    for ax, target in zip(axes[0], targets):
        panel = similarity[similarity["target"] == target].reset_index(drop=True)
        together = coinciding(ax, panel[["visual", "textual"]], [display_name(s) for s in panel["source"]], size, near)
        if together:
            ax.text(0.03, 0.97, "\n".join(together), transform=ax.transAxes, va="top", fontsize=7)
        ax.set_title(display_name(target), fontsize=9)
        ax.set_xlabel("visual similarity", fontsize=8)
        ax.tick_params(labelsize=7)
    axes[0, 0].set_ylabel("textual similarity", fontsize=8)
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], marker=markers[s], ls="none", color=colours[s], markeredgecolor="black", label=display_name(s))
               for s in sources]
    fig.legend(handles=handles, loc="outside right center", fontsize=8, frameon=False, title="pretrained on",
               title_fontsize=8)
    return fig


def lines_figure(cells, x: str, line: list[str], panels: list[str], xlabel: str, ylabel: str, log_x: bool = False,
                 ticks=None, panel_width: float = 3.6, panel_height: float = 2.8):
    """One panel per value of ``panels``; a line per value of ``line`` (display columns, e.g.
    pretraining set and sweep) through the cells' means along ``x``, with the study's 95 %
    interval where a cell has 2 or more blocks and a hollow marker where it has one.
    ``cells``: ``cell_intervals`` rows (``by`` including ``x``)."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.lines import Line2D

    shown = named(cells)
    _one_cell_each(shown, panels + line + [x])
    keys = list(dict.fromkeys(map(tuple, shown[panels].to_numpy().tolist())))
    series = list(dict.fromkeys(map(tuple, shown[line].to_numpy().tolist())))
    colours = dict(zip(series, sns.color_palette("colorblind", len(series))))
    styles = dict(zip(series, ["-", "--", ":", "-."] * 4))
    fig, axes = plt.subplots(1, len(keys), figsize=(panel_width * len(keys) + 1.8, panel_height + 0.4), squeeze=False,
                             layout="constrained")
    any_single = False
    drawn = {}                                   # per panel: its markers' (x, mean) and their names
    for ax, key in zip(axes[0], keys):
        panel = shown[shown[panels].apply(tuple, axis=1) == key]
        drawn[ax] = ([], [])
        for name in series:
            part = panel[panel[line].apply(tuple, axis=1) == name].sort_values(x)
            if part.empty:
                continue
            colour = colours[name]
            ax.plot(part[x], part["mean"], styles[name], color=colour, lw=1.2)
            for _, cell in part.iterrows():
                single = cell["blocks"] < 2
                any_single |= single
                if not single:
                    ax.errorbar(cell[x], cell["mean"], yerr=[[cell["mean"] - cell["low"]], [cell["high"] - cell["mean"]]],
                                color=colour, capsize=2, lw=1)
                ax.plot(cell[x], cell["mean"], "o", ms=5, color=colour, mfc="white" if single else colour, zorder=3)
                drawn[ax][0].append((cell[x], cell["mean"]))
                drawn[ax][1].append(", ".join(map(str, name)))
        if log_x:
            ax.set_xscale("log")
            ax.minorticks_off()
        if ticks is not None:
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set_title(", ".join(map(str, key)), fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel if ax is axes[0, 0] else "", fontsize=8)
        ax.tick_params(labelsize=7)
    handles = [Line2D([], [], ls=styles[s], marker="o", color=colours[s], label=", ".join(map(str, s))) for s in series]
    if any_single:
        handles.append(Line2D([], [], marker="o", ls="none", color="grey", mfc="white", label="one block: no interval"))
    if (shown["blocks"] >= 2).any():
        handles.append(Line2D([], [], marker="|", ls="none", color="grey", label="95 % interval: blocks + test sampling"))
    fig.legend(handles=handles, loc="outside right center", fontsize=7, frameon=False)
    fig.canvas.draw()                            # the final limits: where the markers land
    for ax, (points, names) in drawn.items():
        notes = _coinciding_groups(ax, points, names, size=25)
        if notes:                                # one marker hides another: the panel says so
            ax.set_title(ax.get_title() + "\n" + textwrap.fill("; ".join(notes), width=int(panel_width * 14)),
                         fontsize=7)
    return fig


def _coinciding_groups(ax, points, names: list[str], size: float) -> list[str]:
    """"A, B and C coincide at x" for each group of markers that touch (``_touching``), directly or
    through one another: one note per group, not one per pair, so that the note stays short."""
    group = list(range(len(points)))
    for i, j in _touching(ax, points, size):              # union the pairs that touch
        group = [group[i] if g == group[j] else g for g in group]
    notes = []
    for g in dict.fromkeys(group):
        who = [names[k] for k in range(len(points)) if group[k] == g]
        if len(who) > 1:
            notes.append(f"{', '.join(who[:-1])} and {who[-1]} coincide at {points[group.index(g)][0]:g}")
    return notes


def _one_cell_each(shown, columns: list[str]) -> None:
    """A figure's positions (its panel, x and series) must name one cell each: two cells drawn at
    one place would hide one behind the other."""
    doubled = shown[shown.duplicated(columns, keep=False)]
    if len(doubled):
        raise ValueError(f"cells drawn at one place ({columns}): {doubled[columns].drop_duplicates().to_dict('records')}; "
                         "a design column is missing from the figure's panels, x or series")
