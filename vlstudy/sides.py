"""One side of a comparison: a cell of the results, selected by its columns.

A results row names its pretraining set in ``pretrained_on`` and the rest of the design in
its own columns: ``frozen`` (``Study.finetune_grid`` and ``Study.after_pretraining``),
``fraction`` of the set's training split and ``pretrain_steps`` (``after_pretraining``; a
grid's rows are whole sets at the recipe's updates). A ``Side`` pins the set
and whichever of those a claim is about; a column it leaves open must not vary among the rows
it selects, so two cells are never pooled by accident.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

MODEL_NAMES = {"visual_bert": "VisualBERT", "vilbert": "ViLBERT"}
SOURCE_NAMES = {"none": "none", "random": "random", "coco": "COCO", "vqa_p": "VQA-P", "cc_small": "CC-small",
                "cc_full": "CC", "ccg": "CCG",
                # beyond §3.4: CC's images captioned by a captioner that saw a COCO subset;
                # Flickr-like (SNLI-VE's) images captioned by the COCO captioner
                "ccg_subset_captioner": "CCG (captioner on a COCO subset)", "flickr_g": "Flickr-G"}
TASK_NAMES = {"vqa_d": "VQA-D", "vizwiz": "VizWiz", "snli_ve": "SNLI-VE", "mmimdb": "MM-IMDB"}
# what a comparison measures, beside the task's test score: pretraining losses, weight drift,
# the continuous score
METRIC_NAMES = {"mlm_loss": "MLM loss", "region_loss": "region loss", "l1": "L1 distance",
                "angular": "angular distance", "test_log_likelihood": "log-likelihood",
                "test_macro_f1": "macro-F1"}


def source_name(source: str) -> str:
    """The paper's name of a pretraining set ("coco" → "COCO"); a name it lacks as it is."""
    return SOURCE_NAMES.get(source, source)


@dataclass(frozen=True)
class Side:
    """``source``: the ``pretrained_on`` value. ``fraction``: of its training split; None is
    the whole set (rows with fraction 1, or no fraction column: the grids). ``steps``:
    pretraining updates; ``frozen``: frozen-base rows; None leaves either open."""
    source: str
    fraction: float | None = None
    steps: int | None = None
    frozen: bool | None = None

    @classmethod
    def of(cls, side: "Side | str") -> "Side":
        return side if isinstance(side, Side) else cls(side)

    def name(self) -> str:
        """"COCO", "CC 50%", "COCO 300 updates", "VQA-P (frozen base)"."""
        return (source_name(self.source) + (f" {100 * self.fraction:g}%" if self.fraction is not None else "")
                + (f" {self.steps} updates" if self.steps is not None else "")
                + (" (frozen base)" if self.frozen else ""))

    def rows(self, results: pd.DataFrame) -> pd.DataFrame:
        """The rows of ``results`` on this side, each run once (a run listed twice, as in a
        grid and a size sweep, counts once). A design column left open that varies among
        them is an error naming its values."""
        sel = results[results["pretrained_on"] == self.source]
        whole = 1.0 if self.fraction is None else self.fraction
        sel = sel[np.isclose(_column(sel, "fraction", 1.0).to_numpy(float), whole)]
        steps, frozen = _column(sel, "pretrain_steps", math.nan), _column(sel, "frozen", False)
        if self.steps is not None:
            sel, steps, frozen = (x[(steps == self.steps).to_numpy()] for x in (sel, steps, frozen))
        if self.frozen is not None:
            sel, steps, frozen = (x[(frozen == self.frozen).to_numpy()] for x in (sel, steps, frozen))
        for values, pinned, field in ((steps, self.steps, "steps"), (frozen, self.frozen, "frozen")):
            seen = sorted({int(v) if field == "steps" else bool(v) for v in values.dropna()})
            if pinned is None and len(seen) > 1:
                raise ValueError(f"{self} selects rows with {field} {seen}: pin one (Side(..., {field}=...))")
        return sel[~sel["run"].duplicated() | sel["run"].isna()] if "run" in sel else sel


def _column(rows: pd.DataFrame, column: str, missing) -> pd.Series:
    """``rows[column]`` with ``missing`` where the column or a value is absent."""
    if column not in rows:
        return pd.Series(missing, index=rows.index)
    return rows[column].astype(object).where(rows[column].notna(), missing).astype(type(missing))
