"""Figure conventions: one theme, and every figure saved as PNG and PDF, byte-stable."""
from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import seaborn as sns


def set_theme() -> None:
    sns.set_theme(context="paper", style="ticks", palette="colorblind")
    mpl.rcParams.update({"pdf.fonttype": 42, "svg.hashsalt": "vlstudy", "figure.dpi": 100,
                         "savefig.dpi": 200})


def save_figure(fig, name: str, out_dir: Path) -> list[Path]:
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
