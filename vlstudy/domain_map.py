"""The domain map's analysis: gain over direct training on the measured similarity plane.

Pretraining sets at points between domains (``world.points``) are finetuned on one task;
each run's gain is its test score minus direct training's (same model, task, seed and
frozen or whole finetuning). A least-squares plane through the gains, over the measured
visual and textual similarity to the task (``similarity``), says how much each axis
explains; the paper's own sets, placed on the same plane, test whether it predicts them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

AXES = ("visual", "textual")
KEYS = ["arch", "task", "seed", "frozen"]


def gains(results: pd.DataFrame, baseline: str = "none") -> pd.DataFrame:
    """The runs of ``results`` (finetune_grid rows) other than ``baseline``'s, with ``gain``:
    test score minus the baseline's of the same arch, task, seed and frozen mode."""
    base = results[results["pretrained_on"] == baseline].set_index(KEYS)["test_score"]
    runs = results[results["pretrained_on"] != baseline]
    missing = sorted({k for k in map(tuple, runs[KEYS].to_numpy().tolist()) if k not in base.index})
    if missing:
        raise ValueError(f"no {baseline!r} run to compare with for (arch, task, seed, frozen) {missing}")
    return runs.assign(gain=runs["test_score"].to_numpy() - base.loc[list(map(tuple, runs[KEYS].to_numpy()))]
                       .to_numpy())


@dataclass(frozen=True)
class AxisFit:
    """``gain ≈ intercept + Σ slope[axis] · similarity[axis]``, by least squares over runs."""
    intercept: float
    slope: dict[str, float]
    se: dict[str, float]          # standard errors of the slopes (nan without residual dof)
    span: dict[str, float]        # each axis's range over the fitted points
    r2: float                     # both axes
    r2_alone: dict[str, float]    # one axis at a time
    n: int

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.intercept + sum(self.slope[a] * frame[a].to_numpy(float) for a in self.slope)

    def table(self) -> pd.DataFrame:
        """Per axis: the gain it predicts from one end of the map to the other (slope × span)
        ± its standard error, and the share of the variance it explains alone."""
        return pd.DataFrame([{"axis": a, "slope": self.slope[a], "slope se": self.se[a],
                              "span": self.span[a], "effect across the map": self.slope[a] * self.span[a],
                              "effect se": self.se[a] * self.span[a], "R² alone": self.r2_alone[a],
                              "R² both": self.r2, "runs": self.n} for a in self.slope])


def _least_squares(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Coefficients (intercept first), their standard errors and R²."""
    design = np.column_stack([np.ones(len(y)), x])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    resid = y - design @ coef
    dof = len(y) - design.shape[1]
    total = float(((y - y.mean()) ** 2).sum())
    r2 = 1 - float(resid @ resid) / total if total > 0 else float("nan")
    if dof <= 0:
        return coef, np.full(len(coef), math.nan), r2
    cov = float(resid @ resid) / dof * np.linalg.pinv(design.T @ design)
    return coef, np.sqrt(np.clip(np.diag(cov), 0, None)), r2


def axis_fit(frame: pd.DataFrame, y: str = "gain", axes=AXES) -> AxisFit:
    """Fit ``y`` on the measured similarities ``axes`` (one row per run). An axis that does
    not vary over the rows cannot be fitted: that is an error, not a zero slope."""
    axes = list(axes)
    flat = [a for a in axes if np.ptp(frame[a].to_numpy(float)) < 1e-9]
    if flat:
        raise ValueError(f"axis_fit: {flat} take one value over the {len(frame)} rows; a grid needs "
                         f"two or more steps on each axis")
    x, target = frame[axes].to_numpy(float), frame[y].to_numpy(float)
    coef, se, r2 = _least_squares(x, target)
    alone = {a: _least_squares(x[:, [i]], target)[2] for i, a in enumerate(axes)}
    return AxisFit(intercept=float(coef[0]), slope=dict(zip(axes, map(float, coef[1:]))),
                   se=dict(zip(axes, map(float, se[1:]))), span={a: float(np.ptp(frame[a].to_numpy(float)))
                                                                for a in axes},
                   r2=r2, r2_alone=alone, n=len(frame))


def which_axis(fit: AxisFit) -> str:
    """Plain words: which axis moves the gain more across the map, whether that is resolved
    (the two effects differ by more than twice their combined standard error) and whether
    each effect is beyond noise (more than twice its own)."""
    t = fit.table().set_index("axis")
    (big, small) = sorted(t.index, key=lambda a: -abs(t.loc[a, "effect across the map"]))
    diff = abs(t.loc[big, "effect across the map"]) - abs(t.loc[small, "effect across the map"])
    se = math.hypot(t.loc[big, "effect se"], t.loc[small, "effect se"])
    def effect(a):
        e, s = t.loc[a, "effect across the map"], t.loc[a, "effect se"]
        return f"{a} {e:+.2f} ± {s:.2f}" + ("" if math.isnan(s) else " (beyond noise)" if abs(e) > 2 * s
                                              else " (within noise)")
    effects = ", ".join(effect(a) for a in t.index)
    verdict = (f"the {big} axis matters more" if diff > 2 * se else
               f"the {big} axis moves it more, but the two effects are not separable" if not math.isnan(se) else
               f"the {big} axis moves it more (no spread to judge it)")
    return f"{verdict} (gain from the far end to the task's end: {effects} points; R² {fit.r2:.2f})"
