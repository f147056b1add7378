"""Where a notebook writes: ``outputs/<profile>/{figures,tables}`` (PNG + PDF, CSV)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from .paths import atomic_write_text, outputs_root
from .plots import save_figure


class Outputs:
    def __init__(self, profile: str, root: Path | None = None):
        self.dir = Path(root or outputs_root()) / profile
        self.figures = self.dir / "figures"
        self.tables = self.dir / "tables"

    def figure(self, fig, name: str) -> list[Path]:
        return save_figure(fig, name, self.figures)

    def table(self, df: pd.DataFrame, name: str) -> Path:
        self.tables.mkdir(parents=True, exist_ok=True)
        path = self.tables / f"{name}.csv"
        atomic_write_text(path, df.to_csv(index=False, float_format="%.6g"))
        return path
