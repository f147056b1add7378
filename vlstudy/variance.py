"""Where the noise comes from: pretraining-seed, finetuning-seed and test-sampling variance,
and the allocation of a budget between blocks and finetuning runs that follows from them.

A score varies with the block (BERT stage and pretraining seed), with the finetuning seed
inside the block, and with which test examples were drawn. A nested one-way analysis per
cell (one pretraining set, task and training mode) separates the first two; the third comes
from the per-example scores of each run. Cells of one (arch, task, mode) are pooled: they
share the recipe, so their noise is assumed alike.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

GROUP = ["arch", "task", "frozen"]


def components(results: pd.DataFrame, examples=None, metric: str = "test_score") -> pd.DataFrame:
    """Per (arch, task, frozen), pooled over its cells (pretraining sets): the variances of one
    run's ``metric`` (points² for the test score, nats² for the continuous score,
    ``test_log_likelihood``) due to the block (``pretraining``), the finetuning seed within a
    block (``finetuning``) and test sampling (``test``), with the degrees of freedom behind the
    first two. ``results``: finetune_grid rows with ``block`` and ``finetune_seed`` and at
    least two finetuning seeds per block; ``examples``: run id → per-example scores
    (``examples(run, metric)`` for a metric other than the test score)."""
    rows = []
    for key, group in results.groupby(GROUP, sort=False):
        within_ss = within_df = between_ss = between_df = 0.0
        seeds_per_block, test_vars = [], []
        for _, cell in group.groupby("pretrained_on", sort=False):
            per_block = cell.groupby("block")[metric]
            sizes = per_block.size()
            if (sizes < 2).any():
                raise ValueError(f"cell {key} {cell['pretrained_on'].iloc[0]!r} has a block with one finetuning "
                                 "run: the finetuning variance needs at least two per block")
            within_ss += float(((cell[metric] - per_block.transform("mean")) ** 2).sum())
            within_df += float((sizes - 1).sum())
            means = per_block.mean()
            between_ss += float(((means - means.mean()) ** 2).sum())
            between_df += len(means) - 1
            seeds_per_block += sizes.tolist()
            if examples is not None:
                for run in cell["run"]:
                    scores = examples(run) if metric == "test_score" else examples(run, metric)
                    if scores is not None:
                        test_vars.append(float(np.var(scores, ddof=1) / len(scores)))
        finetuning = within_ss / within_df
        block_means_var = between_ss / between_df if between_df else float("nan")
        per_block_runs = float(np.mean(seeds_per_block))
        rows.append({**dict(zip(GROUP, key)), "metric": metric,
                     # the block means' variance holds the finetuning variance over the runs averaged
                     "pretraining": block_means_var - finetuning / per_block_runs,
                     "finetuning": finetuning,
                     "test": float(np.mean(test_vars)) if test_vars else float("nan"),
                     "pretraining df": between_df, "finetuning df": within_df,
                     "cells": group["pretrained_on"].nunique(), "blocks": group["block"].nunique(),
                     "finetune seeds": per_block_runs})
    return pd.DataFrame(rows)


def finetunes_per_block(pretraining_var: float, finetuning_var: float, pretraining_cost: float,
                        finetuning_cost: float) -> float:
    """The number of finetuning runs per pretraining run that minimises the variance of a
    cell's mean for a fixed budget: √(c_p / c_f · σ²_f / σ²_p) (the classic two-stage
    sampling optimum). A non-positive pretraining variance (noise in its estimate) gives inf:
    then every run should be a finetuning run of the fewest blocks that still replicate."""
    if pretraining_var <= 0:
        return math.inf
    return math.sqrt(pretraining_cost / finetuning_cost * finetuning_var / pretraining_var)


def allocation(table: pd.DataFrame, pretraining_cost: float, finetuning_cost: dict) -> pd.DataFrame:
    """``components`` with each row's optimal finetunes per block. ``finetuning_cost``: seconds
    of one finetuning run per (task, frozen); ``pretraining_cost``: seconds of one pretraining
    run (shared by every task and mode of its block, so this optimum is per cell, the
    conservative reading)."""
    out = table.copy()
    out["pretraining cost s"] = pretraining_cost
    out["finetuning cost s"] = [finetuning_cost[(t, f)] for t, f in zip(out["task"], out["frozen"])]
    out["optimal finetunes per block"] = [
        finetunes_per_block(p, f, pretraining_cost, c)
        for p, f, c in zip(out["pretraining"], out["finetuning"], out["finetuning cost s"])]
    return out
