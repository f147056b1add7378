"""The domain map's analysis: gains paired with direct training, and the per-axis fit."""
import re

import numpy as np
import pandas as pd
import pytest

from vlstudy.domain_map import axis_fit, gains, which_axis


def _runs(scores):
    return pd.DataFrame([{"arch": "visual_bert", "task": "vqa_d", "seed": seed, "frozen": frozen,
                          "pretrained_on": source, "test_score": score}
                         for (source, seed, frozen), score in scores.items()])


def test_gains_pair_each_run_with_direct_training_of_its_seed_and_mode():
    runs = _runs({("none", 0, False): 50.0, ("none", 1, False): 40.0, ("none", 0, True): 30.0,
                  ("coco", 0, False): 55.0, ("coco", 1, False): 41.0, ("coco", 0, True): 36.0})
    got = gains(runs).set_index(["seed", "frozen"])["gain"]
    assert got.to_dict() == {(0, False): 5.0, (1, False): 1.0, (0, True): 6.0}
    with pytest.raises(ValueError, match="no 'none' run"):
        gains(runs[~((runs["seed"] == 0) & runs["frozen"] & (runs["pretrained_on"] == "none"))])
    with pytest.raises(ValueError, match="more than one 'none' run"):
        gains(pd.concat([runs, runs[runs["pretrained_on"] == "none"].head(1)]))


def test_axis_fit_recovers_the_axis_that_matters():
    rng = np.random.default_rng(0)
    grid = [(v, t) for v in (0.7, 0.8, 1.0) for t in (0.3, 0.6, 0.9) for _ in range(3)]
    frame = pd.DataFrame(grid, columns=["visual", "textual"])
    frame["gain"] = 1.0 + 10 * frame["textual"] + 0.5 * frame["visual"] + rng.normal(0, 0.2, len(frame))
    fit = axis_fit(frame)
    assert fit.slope["textual"] == pytest.approx(10, abs=0.5) and abs(fit.slope["visual"]) < 2
    assert fit.r2_alone["textual"] > 0.9 > 0.1 > fit.r2_alone["visual"]
    table = fit.table().set_index("axis")
    assert table.loc["textual", "effect across the map"] == pytest.approx(10 * 0.6, abs=0.4)
    assert which_axis(fit).startswith("the textual axis matters more")
    said = which_axis(fit, "VisualBERT on VQA-D, whole, 3 blocks")
    assert said.startswith("VisualBERT on VQA-D, whole, 3 blocks: the textual axis matters more")
    assert "textual +6" in which_axis(fit) and "(beyond noise)" in which_axis(fit)
    np.testing.assert_allclose(fit.predict(frame), frame["gain"], atol=1.0)
    # noise only: no axis wins
    frame["gain"] = rng.normal(0, 1, len(frame))
    assert "not separable" in which_axis(axis_fit(frame)) and "(beyond noise)" not in which_axis(axis_fit(frame))


def test_axis_fit_refuses_axes_it_cannot_tell_apart():
    frame = pd.DataFrame({"visual": [0.9, 0.9, 0.9], "textual": [0.1, 0.5, 0.9], "gain": [1, 2, 3]})
    with pytest.raises(ValueError, match=r"\['visual'\] do not vary"):
        axis_fit(frame)
    frame["visual"] = 2 * frame["textual"]
    with pytest.raises(ValueError, match="move together"):
        axis_fit(frame)


def test_one_axis_standard_error_is_the_textbook_one():
    x = np.array([0.1, 0.2, 0.4, 0.5, 0.9, 1.0])
    y = np.array([1.0, 1.5, 1.9, 3.2, 3.9, 5.1])
    fit = axis_fit(pd.DataFrame({"textual": x, "gain": y}), axes=["textual"])
    slope, intercept = np.polyfit(x, y, 1)
    rss = ((y - (intercept + slope * x)) ** 2).sum()
    assert fit.slope["textual"] == pytest.approx(slope) and fit.intercept == pytest.approx(intercept)
    assert fit.se["textual"] == pytest.approx(np.sqrt(rss / (len(x) - 2) / ((x - x.mean()) ** 2).sum()))
    assert fit.dof == 4


def test_seed_offsets_shared_by_a_seeds_runs_are_absorbed():
    """All gains of a seed share its direct-training run: its noise shifts them together."""
    rng = np.random.default_rng(1)
    rows = [{"seed": seed, "visual": v, "textual": t} for seed in range(3) for v in (0.7, 1.0) for t in (0.3, 0.9)]
    frame = pd.DataFrame(rows)
    frame["gain"] = 4 * frame["textual"] + frame["seed"].map({0: -3.0, 1: 0.0, 2: 3.0}) + rng.normal(0, 0.05, len(frame))
    pooled, within = axis_fit(frame), axis_fit(frame, group="seed")
    assert within.r2 > 0.95 > pooled.r2
    assert within.se["textual"] < pooled.se["textual"] / 5 and within.dof == len(frame) - 2 - 3
    assert within.slope["textual"] == pytest.approx(4, abs=0.2)
    assert within.predict(frame).mean() == pytest.approx(frame["gain"].mean())
    # three points, one run each: no residual dof, no spread to judge it
    assert "no spread" in which_axis(axis_fit(frame[frame["seed"] == 0].iloc[:3]))


def test_beyond_noise_is_a_5_percent_call_on_a_2x2_grid_with_three_blocks():
    """The study's map: 4 points × 3 blocks, one offset per block (7 residual dof). With no
    true effect an axis is called beyond noise in 5 % of maps (t quantile, not 2 se)."""
    rng = np.random.default_rng(2)
    rows = [{"block": b, "visual": v, "textual": t} for b in range(3) for v in (0.0, 1.0) for t in (0.0, 1.0)]
    frame = pd.DataFrame(rows)
    calls, n = 0, 2000
    for _ in range(n):
        frame["gain"] = rng.normal(0, 1, len(frame)) + frame["block"].map({0: 1.0, 1: 0.0, 2: -1.0})
        calls += bool(re.search(r"textual [+-][\d.]+ ± [\d.]+ \(beyond noise\)",
                                which_axis(axis_fit(frame, group="block"))))
    assert 0.035 < calls / n < 0.065, calls / n
