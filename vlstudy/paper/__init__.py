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


CLAIM_FIELDS = ["id", "section", "claim", "evidence", "needs", "words"]
NEEDS = ("all", "most", "mean", "rankings")   # a claim's logic: see claims.md


@cache
def claims() -> pd.DataFrame:
    """Claims C1–C25: columns id, section, claim, evidence, needs (the claim's logic: all,
    most, mean or rankings) and words (the paper's words that logic is read from)."""
    rows = []
    source = HERE / "claims.md"
    for number, line in enumerate(source.read_text().splitlines(), 1):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0].startswith("C") and cells[0][1:].isdigit():
            if len(cells) != len(CLAIM_FIELDS) or cells[4] not in NEEDS:
                raise ValueError(f"{source}:{number}: a claim row has the cells {CLAIM_FIELDS}, its 'needs' one "
                                 f"of {NEEDS}; got {cells}")
            rows.append(cells)
    return pd.DataFrame(rows, columns=CLAIM_FIELDS)
