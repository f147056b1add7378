"""The paper's own numbers and claims, as data (transcribed from the seed paper)."""
from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd

HERE = Path(__file__).resolve().parent
TABLES = ("table1_finetune", "table2_frozen_base", "tableB1_pretraining_val_loss", "tableD1_ccg",
          "sec3_6_best_pretrained", "tableA1_hyperparameters")


def table(name: str) -> pd.DataFrame:
    if name not in TABLES:
        raise KeyError(f"no paper table {name!r}; known: {TABLES}")
    return pd.read_csv(HERE / f"{name}.csv")


@cache
def claims() -> pd.DataFrame:
    """Claims C1–C25: columns id, section, claim, evidence."""
    rows = []
    for line in (HERE / "claims.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("C") and cells[0][1:].isdigit():
            rows.append(cells)
    return pd.DataFrame(rows, columns=["id", "section", "claim", "evidence"])
