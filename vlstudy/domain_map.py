"""The domain map's analysis: gain over direct training on the measured similarity plane.

Pretraining sets at points between domains (``world.points``) are finetuned on one task;
each run's gain is its test score minus direct training's (same model, task, seed and
frozen or whole finetuning). A least-squares plane through the gains, over the measured
visual and textual similarity to the task (``similarity``), says how much each axis
explains; the paper's own sets, placed on the same plane, show how far it predicts them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.stats as sps

AXES = ("visual", "textual")
KEYS = ["arch", "task", "seed", "frozen"]


def gains(results: pd.DataFrame, baseline: str = "none") -> pd.DataFrame:
    """The runs of ``results`` (finetune_grid rows) other than ``baseline``'s (``"none"``: direct
    training), with ``gain``: test score minus the baseline's of the same arch, task, seed and
    frozen mode."""
    base = results[results["pretrained_on"] == baseline].set_index(KEYS)["test_score"]
    twice = sorted(set(base.index[base.index.duplicated()]))
    if twice:
        raise ValueError(f"more than one {baseline!r} run for (arch, task, seed, frozen) {twice}")
    runs = results[results["pretrained_on"] != baseline]
    keys = list(map(tuple, runs[KEYS].to_numpy().tolist()))
    missing = sorted({k for k in keys if k not in base.index})
    if missing:
        raise ValueError(f"no {baseline!r} run to compare with for (arch, task, seed, frozen) {missing}")
    return runs.assign(gain=runs["test_score"].to_numpy() - base.loc[keys].to_numpy())


@dataclass(frozen=True)
class AxisFit:
    """``gain ≈ intercept + Σ slope[axis] · similarity[axis]`` by least squares over runs, with
    one offset per group (seed) if asked: the runs of one seed share their direct-training
    baseline, so its noise moves all their gains together."""
    intercept: float              # averaged over the groups' offsets
    slope: dict[str, float]
    cov: np.ndarray               # covariance of the slopes (nan without residual dof)
    span: dict[str, float]        # each axis's range over the fitted points
    r2: float                     # both axes (within groups)
    r2_alone: dict[str, float]    # one axis at a time (within groups)
    n: int
    dof: int                      # residual degrees of freedom

    @property
    def se(self) -> dict[str, float]:
        return {a: float(np.sqrt(self.cov[i, i])) for i, a in enumerate(self.slope)}

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.intercept + sum(self.slope[a] * frame[a].to_numpy(float) for a in self.slope)

    def table(self) -> pd.DataFrame:
        """Per axis: the gain it predicts from one end of the map to the other (slope × span)
        ± its standard error, and the share of the variance it explains alone."""
        se = self.se
        return pd.DataFrame([{"axis": a, "slope": self.slope[a], "slope se": se[a], "span": self.span[a],
                              "effect across the map": self.slope[a] * self.span[a],
                              "effect se": se[a] * self.span[a], "R² alone": self.r2_alone[a],
                              "R² both": self.r2, "runs": self.n, "residual dof": self.dof}
                             for a in self.slope])


def _within(values: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """``values`` minus their group's mean (one group: minus the mean, i.e. an intercept)."""
    out = np.array(values, dtype=float)
    for g in np.unique(groups):
        out[groups == g] -= out[groups == g].mean(axis=0)
    return out


def _least_squares(x: np.ndarray, y: np.ndarray, groups: np.ndarray):
    """Slopes of ``y`` on the columns of ``x`` with one offset per group (Frisch–Waugh: both
    sides demeaned within groups), their covariance, R² within groups and residual dof."""
    xd, yd = _within(x, groups), _within(y, groups)
    coef, *_ = np.linalg.lstsq(xd, yd, rcond=None)
    resid = yd - xd @ coef
    dof = len(y) - x.shape[1] - len(np.unique(groups))
    total = float(yd @ yd)
    r2 = 1 - float(resid @ resid) / total if total > 0 else float("nan")
    cov = (float(resid @ resid) / dof * np.linalg.inv(xd.T @ xd) if dof > 0
           else np.full((x.shape[1], x.shape[1]), np.nan))
    return coef, cov, r2, dof


def axis_fit(frame: pd.DataFrame, y: str = "gain", axes=AXES, group: str | None = None) -> AxisFit:
    """Fit ``y`` on the measured similarities ``axes`` (one row per run); ``group``: a column
    whose values get their own offset (e.g. "seed"). An axis that does not vary, or axes
    that move together, cannot be told apart: that is an error, not a number."""
    axes = list(axes)
    x, target = frame[axes].to_numpy(float), frame[y].to_numpy(float)
    groups = frame[group].to_numpy() if group else np.zeros(len(frame))
    demeaned = _within(x, groups)
    flat = [a for a, col in zip(axes, demeaned.T) if np.ptp(col) < 1e-9]
    if flat:
        raise ValueError(f"axis_fit: {flat} do not vary within {group or 'the rows'}; a grid needs "
                         f"two or more steps on each axis")
    if np.linalg.matrix_rank(demeaned) < len(axes):
        raise ValueError(f"axis_fit: the axes {axes} move together over these points; their effects "
                         f"cannot be separated")
    coef, cov, r2, dof = _least_squares(x, target, groups)
    alone = {a: _least_squares(x[:, [i]], target, groups)[2] for i, a in enumerate(axes)}
    return AxisFit(intercept=float(target.mean() - x.mean(axis=0) @ coef), slope=dict(zip(axes, map(float, coef))),
                   cov=cov, span={a: float(np.ptp(x[:, i])) for i, a in enumerate(axes)},
                   r2=r2, r2_alone=alone, n=len(frame), dof=dof)


def which_axis(fit: AxisFit, about: str = "") -> str:
    """Plain words: which axis moves the gain more across the map, whether that is resolved
    (the difference of the two effects' sizes is outside its 95 % t-interval on the fit's
    residual dof, from the slopes' covariance) and whether each effect is beyond noise (its
    own 95 % t-interval excludes 0). ``about`` names what was fitted (model, task, training,
    blocks), so that the sentence stands alone."""
    t = fit.table().set_index("axis")
    effect = t["effect across the map"]
    big, small = sorted(t.index, key=lambda a: -abs(effect[a]))
    # |e_big| - |e_small| = w · slopes with w = (±span_big, ∓span_small)
    names = list(fit.slope)
    w = np.zeros(len(names))
    w[names.index(big)] = np.sign(effect[big]) * t.loc[big, "span"]
    w[names.index(small)] = -np.sign(effect[small]) * t.loc[small, "span"]
    diff, se = abs(effect[big]) - abs(effect[small]), float(np.sqrt(max(w @ fit.cov @ w, 0.0)))
    crit = float(sps.t.ppf(0.975, fit.dof)) if fit.dof > 0 else float("nan")

    def said(a):
        e, s = effect[a], t.loc[a, "effect se"]
        return f"{a} {e:+.2f} ± {s:.2f}" + ("" if math.isnan(s) else " (beyond noise)" if abs(e) > crit * s
                                              else " (within noise)")
    verdict = (f"the {big} axis matters more" if diff > crit * se else
               f"the {big} axis moves it more, but the two effects are not separable" if not math.isnan(se) else
               f"the {big} axis moves it more (no spread to judge it)")
    subject = f"{about}: " if about else ""
    return (f"{subject}{verdict} (gain from the far end to the task's end: {', '.join(said(a) for a in t.index)} "
            f"points ± se, judged at 95 % with t on {fit.dof} dof; R² {fit.r2:.2f})")
