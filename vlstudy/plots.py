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
