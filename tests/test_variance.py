"""vlstudy.variance on results simulated with known components: its estimates are unbiased."""
import math

import numpy as np
import pandas as pd
import pytest

from vlstudy.variance import allocation, components, finetunes_per_block


def simulated_results(rng, pretraining_sd=2.0, finetuning_sd=1.0, blocks=4, seeds=3, examples=300, chance=0.6):
    """One study's finetuning rows for one (arch, task, frozen): three pretraining sets, each
    block adding N(0, pretraining_sd²) to its set's runs and each finetuning seed N(0,
    finetuning_sd²); per-example scores are 0/100 draws at the run's own chance, so a run's test
    sampling variance is about chance·(1−chance)·10⁴/examples."""
    rows, per_example = [], {}
    for cell, mean in (("coco", 60.0), ("vqa_p", 58.0), ("cc_small", 55.0)):
        for block in range(blocks):
            block_effect = rng.normal(0, pretraining_sd)
            for seed in range(seeds):
                run = f"{cell}-{block}-{seed}"
                score = mean + block_effect + rng.normal(0, finetuning_sd)
                rows.append({"arch": "visual_bert", "task": "vqa_d", "frozen": False, "pretrained_on": cell,
                             "block": block, "finetune_seed": seed, "run": run, "test_score": score})
                per_example[run] = (rng.random(examples) < chance) * 100.0
    return pd.DataFrame(rows), per_example


@pytest.mark.calibration
def test_components_recover_known_variances():
    rng, studies = np.random.default_rng(0), 400
    estimates = []
    for _ in range(studies):
        results, per_example = simulated_results(rng)
        estimates.append(components(results, per_example.get).iloc[0])
    table = pd.DataFrame(estimates)
    first = table.iloc[0]
    assert (first["pretraining df"], first["finetuning df"], first["cells"], first["blocks"],
            first["finetune seeds"]) == (9, 24, 3, 4, 3)
    for column, truth in (("pretraining", 4.0), ("finetuning", 1.0), ("test", 0.6 * 0.4 * 1e4 / 300)):
        mean, se = table[column].mean(), table[column].std(ddof=1) / math.sqrt(studies)
        print(f"{column}: mean estimate {mean:.3f} ± {se:.3f}, truth {truth:.3f}")
        assert abs(mean - truth) <= 3 * se, column
    # with no pretraining variance the estimate scatters around 0 (it may fall below it)
    zero = pd.DataFrame([components(simulated_results(rng, pretraining_sd=0.0)[0]).iloc[0] for _ in range(200)])
    assert abs(zero["pretraining"].mean()) <= 3 * zero["pretraining"].std(ddof=1) / math.sqrt(200)
    assert (zero["pretraining"] < 0).any()


def test_one_run_per_block_is_refused():
    results, _ = simulated_results(np.random.default_rng(1), seeds=1)
    with pytest.raises(ValueError, match="one finetuning run"):
        components(results)


def test_allocation_is_the_two_stage_optimum():
    # √(c_p/c_f · σ²_f/σ²_p) = √(160/40 · 1/4) = 1
    assert finetunes_per_block(4.0, 1.0, 160.0, 40.0) == pytest.approx(1.0)
    assert finetunes_per_block(0.0, 1.0, 160.0, 40.0) == math.inf
    table = components(simulated_results(np.random.default_rng(2))[0])
    out = allocation(table, 160.0, {("vqa_d", False): 40.0})
    expected = math.sqrt(160 / 40 * out["finetuning"].iloc[0] / out["pretraining"].iloc[0])
    assert out["optimal finetunes per block"].iloc[0] == pytest.approx(expected)
    assert out["finetuning cost s"].iloc[0] == 40.0


def test_components_of_the_continuous_score():
    """The same analysis on another per-example metric (the continuous score, in nats): here
    a rescaled copy of the test score, so every variance scales by the square."""
    results, per_example = simulated_results(np.random.default_rng(3))
    results["test_log_likelihood"] = results["test_score"] / 100
    examples = lambda run, metric="test_score": per_example[run] / 100 if metric == "test_log_likelihood" else per_example[run]
    points = components(results, examples).iloc[0]
    nats = components(results, examples, metric="test_log_likelihood").iloc[0]
    assert nats["metric"] == "test_log_likelihood" and points["metric"] == "test_score"
    for column in ("pretraining", "finetuning", "test"):
        assert nats[column] == pytest.approx(points[column] / 1e4)
