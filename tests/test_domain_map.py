"""The domain map's analysis: gains paired with direct training, and the per-axis fit."""
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
    assert "textual +6" in which_axis(fit) and "(beyond noise)" in which_axis(fit)
    np.testing.assert_allclose(fit.predict(frame), frame["gain"], atol=1.0)
    # noise only: no axis wins
    frame["gain"] = rng.normal(0, 1, len(frame))
    assert "not separable" in which_axis(axis_fit(frame)) and "(beyond noise)" not in which_axis(axis_fit(frame))


def test_axis_fit_refuses_an_axis_that_does_not_vary():
    frame = pd.DataFrame({"visual": [0.9, 0.9, 0.9], "textual": [0.1, 0.5, 0.9], "gain": [1, 2, 3]})
    with pytest.raises(ValueError, match=r"\['visual'\] take one value"):
        axis_fit(frame)
