"""The claim catalogue's decisions: comparisons on blocks, margins, Holm, pooled effects."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from vlstudy import verdicts
from vlstudy.sides import Side
from vlstudy.verdicts import Comparison, decide, evaluate_claims, evaluate_comparisons, pretraining_loss_claims


def _rows(cells: dict, blocks=(0, 1, 2), noise=0.1, **extra) -> pd.DataFrame:
    """One finetuning row per (cell, block): ``cells`` maps (arch, pretrained_on, task) to a
    mean; block k adds ``noise * k`` (shared by every cell: blocks are paired)."""
    return pd.DataFrame([{"arch": a, "pretrained_on": p, "task": t, "block": b, "seed": b, "finetune_seed": 0,
                          "test_score": v + noise * b * (1 + 0.3 * (i % 3)), **extra}
                         for i, ((a, p, t), v) in enumerate(cells.items()) for b in blocks])


def test_directional_claim_supported_contradicted_undecided():
    cells = {("visual_bert", p, "mmimdb"): v for p, v in (("none", 70.0), ("coco", 60.0), ("vqa_p", 61.0),
                                                           ("cc_small", 69.0))}
    claims, detail = evaluate_claims(_rows(cells), archs=("visual_bert",))
    c4 = claims.set_index("claim").loc["C4"]
    assert (c4["comparisons"], c4["holding"], c4["decision"], c4["needs"]) == (3, 3, "supported", "all")
    # the claim's effect is its deciding comparison's: for "all", the one with the largest p
    weakest = detail[detail["claim"] == "C4"].sort_values("p").iloc[-1]
    assert c4["deciding"] == weakest["comparison"] and c4["effect"] == weakest["difference"]
    assert c4["low"] == weakest["low"] > 0 and c4["unit"] == "points"
    row = detail.set_index("comparison").loc["MM-IMDB: VisualBERT none > VisualBERT COCO"]
    assert row["claimed side"].startswith("70.") and row["claimed side"].endswith("(3)")
    assert row["outcome"] == "holds" and row["after Holm"] == "holds" and row["low"] > 0 and row["mde"] > 0
    assert claims.set_index("claim").loc["C3", "decision"] == "not measured"
    one_block = evaluate_claims(_rows(cells, blocks=(0,)), archs=("visual_bert",))[0].set_index("claim").loc["C4"]
    assert one_block["decision"] == "undecided" and "one block" in one_block["reason"]
    flipped = _rows({k: 140 - v for k, v in cells.items()})
    assert evaluate_claims(flipped, archs=("visual_bert",))[0].set_index("claim").loc["C4", "decision"] == "contradicted"
    noisy = _rows(cells, noise=30.0)       # block spread far beyond the gaps
    assert evaluate_claims(noisy, archs=("visual_bert",))[0].set_index("claim").loc["C4", "decision"] == "undecided"
    assert set(claims["decision"]) <= set(verdicts.DECISIONS)


def test_equal_claims_use_their_margin():
    """C2 (COCO ≈ VQA-P) holds only when the interval lies within ±1 point; a 5-point gap is
    refused and, measured precisely, contradicts it."""
    blocks = tuple(range(6))
    near = {(m, p, t): 60.0 + (0.2 if p == "coco" else 0) for m in ("visual_bert",) for p in ("coco", "vqa_p")
            for t in ("vqa_d", "vizwiz")}
    c2 = evaluate_claims(_rows(near, blocks, noise=0.05), archs=("visual_bert",))[0].set_index("claim").loc["C2"]
    assert c2["decision"] == "supported" and "margin ±1" in c2["reason"]
    assert c2["deciding"].endswith("(90 % interval, the TOST's)") and -1 < c2["low"] < c2["high"] < 1
    far = {k: v + (5 if k[1] == "coco" else 0) for k, v in near.items()}
    c2 = evaluate_claims(_rows(far, blocks, noise=0.05), archs=("visual_bert",))[0].set_index("claim").loc["C2"]
    assert c2["decision"] == "contradicted"
    vague = evaluate_claims(_rows(near, (0, 1), noise=3.0), archs=("visual_bert",))[0].set_index("claim").loc["C2"]
    assert vague["decision"] == "undecided"          # two noisy blocks cannot show equality


def test_size_claims():
    base = {"coco": 60.0, "vqa_p": 61.0, "cc_small": 50.0, "cc_full": 55.0}
    rows = pd.concat([_rows({("vilbert", d, "vqa_d"): base[d] + 5 * f}, fraction=f) for d in base for f in (0.5, 1.0)])
    claims, detail = evaluate_claims(rows, "size", ("vilbert",), fractions=(0.5, 1.0))
    assert claims.set_index("claim")["decision"].to_dict() == {"C5": "supported", "C6": "supported",
                                                                "C7": "supported"}
    assert "ViLBERT CC 100%" in " ".join(detail["comparison"])
    with pytest.raises(ValueError, match="unknown claim set"):
        evaluate_claims(rows, "fig9")


def test_checkpoint_and_model_claims():
    score = {(300, False): 60, (600, False): 58, (300, True): 40, (600, True): 45}
    rows = pd.concat([_rows({("visual_bert", "coco", "vqa_d"): v}, frozen=f, pretrain_steps=n)
                      for (n, f), v in score.items()])
    checkpoints = [Side("coco", steps=300), Side("coco", steps=600)]
    claims, detail = evaluate_claims(rows, "checkpoints", ["visual_bert"], checkpoints=checkpoints)
    assert claims.set_index("claim")["decision"].to_dict() == {"C22": "supported", "C23": "supported"}
    assert "VQA-D: VisualBERT COCO 600 updates (frozen base) > VisualBERT COCO 300 updates (frozen base)" in set(
        detail["comparison"])
    both = pd.concat([_rows({(a, "none", "vqa_d"): 60 + (5 if a == "visual_bert" else 0)}, frozen=False)
                      for a in ("visual_bert", "vilbert")])
    c21 = evaluate_claims(both, "models", ["visual_bert", "vilbert"], sources=("none",))[0]
    assert c21.set_index("claim").loc["C21", "decision"] == "supported"


def test_a_side_selects_its_cell_by_columns_and_refuses_to_pool_two():
    """A side's rows come from the results' design columns: a whole set is fraction 1 or no
    fraction at all (a grid's rows), a run listed in both a grid and a sweep counts once, and a
    column left open that varies (two checkpoints, whole and frozen) is an error."""
    grid = _rows({("visual_bert", "ccg", "vqa_d"): 60.0}).assign(run=lambda d: [f"g{b}" for b in d["block"]])
    sweep = pd.concat([_rows({("visual_bert", "ccg", "vqa_d"): 60.0 - 10 * (f < 1)}, fraction=f) for f in (0.25, 1.0)])
    sweep["run"] = [f"g{b}" if f == 1 else f"s{b}" for b, f in zip(sweep["block"], sweep["fraction"])]
    both = pd.concat([grid, sweep], ignore_index=True)
    assert Side("ccg").rows(both)["run"].tolist() == ["g0", "g1", "g2"]          # whole set, each run once
    assert Side("ccg", 0.25).rows(both)["run"].tolist() == ["s0", "s1", "s2"]
    assert Side("ccg", 0.5).rows(both).empty
    c18 = verdicts.compare(both, Comparison("visual_bert", "vqa_d", Side("ccg", 1.0), Side("ccg", 0.25)))
    assert c18["difference"] == pytest.approx(10) and c18["blocks"] == 3
    assert c18["comparison"] == "VQA-D: VisualBERT CCG 100% > VisualBERT CCG 25%"
    checkpoints = pd.concat([_rows({("visual_bert", "coco", "vqa_d"): 60.0}, pretrain_steps=n, frozen=f)
                             for n in (300, 600) for f in (False, True)])
    with pytest.raises(ValueError, match=r"steps \[300, 600\]: pin one"):
        Side("coco").rows(checkpoints)
    with pytest.raises(ValueError, match=r"frozen \[False, True\]: pin one"):
        Side("coco", steps=300).rows(checkpoints)
    assert len(Side("coco", steps=300, frozen=True).rows(checkpoints)) == 3
    no_mark = pd.concat([_rows({("visual_bert", "coco", "vqa_d"): 60.0}), _rows({("visual_bert", "coco", "vqa_d"): 50.0},
                                                                                frozen=True)])
    with pytest.raises(ValueError, match=r"frozen \[False, True\]"):    # no frozen value is whole, not either
        Side("coco").rows(no_mark)
    assert list(Side("vqa_p").rows(both).columns) == list(both.columns)     # nothing there: an empty table
    unnamed = pd.concat([_rows({("visual_bert", "coco", "vqa_d"): 60.0})] * 2).assign(run=None)
    assert len(Side("coco").rows(unnamed)) == 6                              # rows without a run id all count
    assert Side("vqa_p", steps=300, frozen=True).name() == "VQA-P 300 updates (frozen base)"


def test_pretraining_loss_claims_on_blocks():
    rows = [{"arch": "visual_bert", "sweep": "same updates", "dataset": d, "fraction": 1.0, "block": b,
             "mlm_loss": v + 0.01 * b * (1 + i)} for i, (d, v) in enumerate((("coco", 0.5), ("vqa_p", 0.6), ("cc_small", 1.5)))
            for b in (0, 1, 2)]
    rows += [{"arch": "visual_bert", "sweep": "same epochs", "dataset": "cc_full", "fraction": f, "block": b,
              "mlm_loss": v + 0.01 * b * (1 + i)} for i, (f, v) in enumerate(((0.1, 1.6), (0.5, 1.7), (1.0, 1.4)))
             for b in (0, 1, 2)]
    claims, detail = pretraining_loss_claims(pd.DataFrame(rows), ["visual_bert"])
    decided = claims.set_index("claim")["decision"]
    assert decided["C24"] == "supported"
    assert decided["C25"] == "contradicted"        # 10 % → 50 % worse, 50 % → 100 % better: reversed once
    assert "reversed" in set(detail["after Holm"])


def test_test_sampling_widens_the_interval():
    """Per-example scores add the test set's sampling variance to the block-level interval where
    the cells differ by example (here each cell finds its own examples easy or hard, in every
    block alike); runs that differ only by chance per example add nothing the blocks do not
    already hold."""
    rng = np.random.default_rng(0)
    cells = {("visual_bert", p, "vqa_d"): v for p, v in (("coco", 60.0), ("cc_small", 58.0))}
    rows = _rows(cells, blocks=(0, 1, 2, 3)).assign(run=lambda d: [f"r{i}" for i in range(len(d))])
    ease = {p: rng.normal(0, 2.0, 400) for p in ("coco", "cc_small")}        # cell × example effects
    chance = {run: 1 / (1 + np.exp(-(np.log(s / (100 - s)) + ease[p]))) for run, s, p in
              zip(rows["run"], rows["test_score"], rows["pretrained_on"])}
    examples = {run: (rng.random(400) < q).astype(float) * 100 for run, q in chance.items()}
    rows["test_score"] = [examples[r].mean() for r in rows["run"]]
    c = Comparison("visual_bert", "vqa_d", "coco", "cc_small")
    without = verdicts.compare(rows, c)
    with_examples = verdicts.compare(rows, c, examples.get)
    assert with_examples["difference"] == pytest.approx(without["difference"])
    assert with_examples["high"] - with_examples["low"] > 1.2 * (without["high"] - without["low"])
    flat = {run: (rng.random(400) < 0.6).astype(float) * 100 for run in rows["run"]}   # no example effects
    rows["test_score"] = [flat[r].mean() for r in rows["run"]]
    widths = [verdicts.compare(rows, c, e)["_interval"].se for e in (None, flat.get)]
    assert widths[1] < 1.1 * widths[0]


def within(observed: float, rate: float, studies: int) -> bool:
    """Whether an observed rate lies within 3 Monte-Carlo sds of ``rate``, on either side."""
    return abs(observed - rate) <= 3 * math.sqrt(rate * (1 - rate) / studies)


def simulated_rows(rng, effects: dict, blocks: int, sd: float = 1.0, shared_sd: float = 2.0) -> pd.DataFrame:
    """One study's block-level scores: ``effects`` maps (arch, set, task) to its true gain over
    55; every cell of a block shares that block's draw (blocks are paired), and each cell adds
    its own N(0, sd²)."""
    rows = []
    for b in range(blocks):
        shared = rng.normal(0, shared_sd)
        rows += [{"arch": a, "pretrained_on": p, "task": t, "block": b, "seed": b,
                  "test_score": 55 + shared + effect + rng.normal(0, sd)} for (a, p, t), effect in effects.items()]
    return pd.DataFrame(rows)


@pytest.mark.calibration
def test_tost_on_the_verdicts_path_is_one_sided_five_percent():
    """An "equal" or "not better" comparison holds at a one-sided 5 % (its 90 % interval within
    the margin), as ``stats.equivalence`` says, not at 10 %."""
    from vlstudy import stats
    rows = pd.DataFrame([{"arch": "visual_bert", "pretrained_on": p, "task": "vqa_d", "block": b, "seed": b,
                          "test_score": 60.0 + (d if p == "coco" else 0.0)}
                         for b, d in enumerate((1.0, 2.0, 3.0)) for p in ("coco", "vqa_p")])
    # paired block differences 1, 2, 3 (mean 2, se 1/√3, 2 df) and a margin of 3.4: p = 0.068
    expected = scipy_stats.t.sf((3.4 - 2) * math.sqrt(3), 2)
    for kind in ("equal", "not_greater"):
        row = verdicts.compare(rows, Comparison("visual_bert", "vqa_d", "coco", "vqa_p", kind), margin=3.4)
        assert row["p"] == pytest.approx(expected) and 0.05 < row["p"] < 0.1
        assert row["outcome"] == "undecided"
    arms = [stats.Arm.of(np.arange(3), rows["test_score"][rows["pretrained_on"] == p]) for p in ("coco", "vqa_p")]
    assert not stats.equivalence(*arms, margin=3.4)["equivalent"]
    # the rate at a true gap equal to the margin, through the whole claim path: C2 needs both
    # comparisons; VizWiz's holds almost always, so C2 is supported as often as VQA-D's holds
    studies, rng, margin = 2000, np.random.default_rng(2), verdicts.MARGINS["C2"][0]
    comparisons = {"C2": [Comparison("visual_bert", t, "coco", "vqa_p", "equal") for t in ("vqa_d", "vizwiz")]}
    supported = held = 0
    for _ in range(studies):
        gap = {"vqa_d": margin, "vizwiz": 0.0}
        rows = pd.concat([simulated_rows(rng, {("visual_bert", "coco", t): gap[t], ("visual_bert", "vqa_p", t): 0.0},
                                         6, sd=0.5 if t == "vqa_d" else 0.05) for t in gap], ignore_index=True)
        claims, detail = evaluate_comparisons(rows, comparisons)
        supported += claims["decision"].iloc[0] == "supported"
        held += detail["outcome"].iloc[0] == "holds"
    print(f"C2 at a true gap of one margin: supported in {supported / studies:.2%}, VQA-D holds in {held / studies:.2%}")
    assert within(held / studies, 0.05, studies) and within(supported / studies, 0.05, studies)


def test_a_claim_about_every_comparison_needs_every_one():
    """C1 says COCO and VQA-P beat CC-small on three tasks for both models: 12 comparisons. One
    true +8 gain among eleven of −0.3 does not support it (a pooled mean would have)."""
    rng = np.random.default_rng(4)
    effects = {}
    for m in ("visual_bert", "vilbert"):
        for t in ("vqa_d", "vizwiz", "snli_ve"):
            effects[(m, "cc_small", t)] = 0.0
            for p in ("coco", "vqa_p"):
                effects[(m, p, t)] = 8.0 if (m, p, t) == ("visual_bert", "coco", "vqa_d") else -0.3
    claims, detail = evaluate_claims(simulated_rows(rng, effects, 6, sd=0.5), archs=("visual_bert", "vilbert"))
    c1 = claims.set_index("claim").loc["C1"]
    assert (c1["comparisons"], c1["holding"], c1["needs"]) == (12, 1, "all")
    assert c1["decision"] != "supported" and "1 of 12 hold at 5 %" in c1["reason"]
    assert c1["deciding"] != "VQA-D: VisualBERT COCO > VisualBERT CC-small"
    counted = detail[detail["claim"] == "C1"].set_index("comparison")["for the claim"]
    assert counted["VQA-D: VisualBERT COCO > VisualBERT CC-small"] == "holds" and (counted == "holds").sum() == 1


@pytest.mark.calibration
def test_claim_path_error_rates_on_simulated_studies():
    """Through the whole claim path (``evaluate_comparisons``) at 3 blocks. C8 (VQA-P beats
    direct training on VizWiz, for both models) where one model gains 20 points and the other
    none, the least favourable case for an intersection–union test: supported in 2.5 % of
    studies, the one-sided level of each comparison's 95 % interval (2,000 studies tell 2.5 %
    from 3.75 %). C1's four comparisons with no gain anywhere: contradicted in at most 2.5 %
    (Holm over them), supported almost never."""
    rng = np.random.default_rng(1)
    least_favourable = {("visual_bert", "vqa_p", "vizwiz"): 20.0, ("visual_bert", "none", "vizwiz"): 0.0,
                        ("vilbert", "vqa_p", "vizwiz"): 0.0, ("vilbert", "none", "vizwiz"): 0.0}
    c8 = {"C8": [Comparison(m, "vizwiz", "vqa_p", "none") for m in ("visual_bert", "vilbert")]}
    c1 = {"C1": [Comparison("visual_bert", t, s, "cc_small") for t in ("vqa_d", "vizwiz") for s in ("coco", "vqa_p")]}
    null = {("visual_bert", p, t): 0.0 for t in ("vqa_d", "vizwiz") for p in ("coco", "vqa_p", "cc_small")}
    rates = {}
    for name, effects, claim, studies in (("C8, least favourable", least_favourable, c8, 2000),
                                          ("C1, no gain", null, c1, 1000)):
        decisions = [evaluate_comparisons(simulated_rows(rng, effects, 3), claim)[0]["decision"].iloc[0]
                     for _ in range(studies)]
        rates[name] = {d: decisions.count(d) / studies for d in ("supported", "contradicted")}
    print(f"claims at 3 blocks: {rates}")
    assert within(rates["C8, least favourable"]["supported"], 0.025, 2000)
    assert rates["C1, no gain"]["contradicted"] <= 0.025 + 3 * math.sqrt(0.025 * 0.975 / 1000)
    assert rates["C1, no gain"]["supported"] < 0.005


def test_most_and_mean_claims():
    """C10 needs a majority of its 8 comparisons after Holm; a claim about a mean is decided on
    the mean alone (decide(..., logic="mean"))."""
    gaps = {"vqa_d": -5, "vizwiz": -5, "snli_ve": -5, "mmimdb": 5}     # coco/cc_small minus none
    def c10(gap_by_task, cc_vizwiz):
        effects = {("vilbert", p, t): (0.0 if p == "none" else g) for t, g in gap_by_task.items()
                   for p in ("none", "coco", "cc_small")}
        effects[("vilbert", "cc_small", "vizwiz")] = cc_vizwiz
        claims, detail = evaluate_claims(simulated_rows(np.random.default_rng(5), effects, 6, sd=0.3), "frozen",
                                         archs=("vilbert",))
        return claims.set_index("claim").loc["C10"]
    most = c10(gaps, -5)                                          # 6 of 8 hold
    assert (most["needs"], most["holding"], most["comparisons"], most["decision"]) == ("most", 6, 8, "supported")
    split = c10(gaps, 5)                                          # 5 hold, 3 fail: 5 of 8 is a majority
    assert split["decision"] == "supported" and split["holding"] == 5
    half = c10({**gaps, "snli_ve": 5}, 5)                         # 4 hold, 4 fail: no majority can hold
    assert half["decision"] == "contradicted"
    rows = simulated_rows(np.random.default_rng(6), {("visual_bert", p, "vqa_d"): v for p, v in
                                                    (("coco", 3.0), ("vqa_p", -1.0), ("cc_small", 0.0))}, 6, sd=0.3)
    done = [{**verdicts.compare(rows, Comparison("visual_bert", "vqa_d", s, "cc_small")), "_example_set": "vqa_d"}
            for s in ("coco", "vqa_p")]
    mean = decide("C1", done, logic="mean")
    assert mean["decision"] == "supported" and mean["effect"] == pytest.approx(1.0, abs=0.3)
    assert decide("C1", done)["decision"] == "contradicted"       # VQA-P below CC-small: not every one holds
    with pytest.raises(ValueError, match="one unit"):
        decide("C1", [done[0], {**done[1], "unit": "l1"}], logic="mean")


def test_rankings_are_chosen_on_validation_and_tested_on_test():
    """C13: each model's best set is picked by its validation scores, then compared on test
    scores, so the choice and the test do not share a sample. Without validation scores the
    reason says the selection and the test share one."""
    rng = np.random.default_rng(7)
    test = {("visual_bert", "coco"): 60.0, ("visual_bert", "vqa_p"): 50.0, ("visual_bert", "cc_small"): 52.0,
            ("vilbert", "coco"): 50.0, ("vilbert", "vqa_p"): 50.0, ("vilbert", "cc_small"): 61.0}
    val = {**test, ("vilbert", "vqa_p"): 70.0}                   # validation would pick VQA-P for ViLBERT
    rows = simulated_rows(rng, {(a, p, "mmimdb"): v - 55 for (a, p), v in test.items()}, 4, sd=0.3)
    rows["val_score"] = [val[(a, p)] + rng.normal(0, 0.3) for a, p in zip(rows["arch"], rows["pretrained_on"])]
    c13 = verdicts.rankings_differ(rows, "C13", "mmimdb", ("visual_bert", "vilbert"))
    assert "best for ViLBERT: VQA-P" in c13["reason"] and "chosen on val_score" in c13["reason"]
    assert c13["decision"] == "undecided"            # on test, ViLBERT's VQA-P is level with its COCO
    one_sample = verdicts.rankings_differ(rows.drop(columns="val_score"), "C13", "mmimdb", ("visual_bert", "vilbert"))
    assert "best for ViLBERT: CC-small" in one_sample["reason"] and "selection on one sample" in one_sample["reason"]
    assert one_sample["decision"] == "supported"


def test_decide_without_comparisons_is_not_measured():
    assert decide("C1", [])["decision"] == "not measured"


def test_shown_rounds_and_dashes():
    claims, _ = evaluate_claims(_rows({("visual_bert", "none", "mmimdb"): 70.0,
                                        ("visual_bert", "coco", "mmimdb"): 60.0}), archs=("visual_bert",))
    text = verdicts.shown(claims).to_string()
    assert "nan" not in text and "—" in text
    assert all(len(part.split(".")[-1]) <= 2 for part in verdicts.shown(claims)["effect"] if part != "—")
    lines = verdicts.sentences(claims)
    assert lines[0].startswith("C1: not measured") and any("C4: " in line for line in lines)


def test_outcomes_agree_with_the_intervals():
    """A comparison's outcome is its interval's: "greater" holds exactly when the 95 % interval
    is above 0; "equal" exactly when stats.equivalence (the 90 % interval within ±margin) says so."""
    from vlstudy import stats
    rng = np.random.default_rng(3)
    for _ in range(40):
        gap, blocks = rng.normal(0, 1.5), tuple(range(int(rng.integers(2, 6))))
        rows = pd.DataFrame([{"arch": "visual_bert", "pretrained_on": p, "task": "vqa_d", "block": b, "seed": b,
                              "test_score": 60 + (gap if p == "coco" else 0) + rng.normal(0, 1)}
                             for b in blocks for p in ("coco", "vqa_p")])
        greater = verdicts.compare(rows, Comparison("visual_bert", "vqa_d", "coco", "vqa_p"))
        assert (greater["outcome"] == "holds") == (greater["low"] > 0)
        assert (greater["outcome"] == "reversed") == (greater["high"] < 0)
        equal = verdicts.compare(rows, Comparison("visual_bert", "vqa_d", "coco", "vqa_p", "equal"), margin=1.0)
        arms = [stats.Arm.of(rows["block"][rows["pretrained_on"] == p].to_numpy(),
                             rows["test_score"][rows["pretrained_on"] == p].to_numpy()) for p in ("coco", "vqa_p")]
        tost = stats.equivalence(*arms, margin=1.0)
        assert (equal["outcome"] == "holds") == bool(tost["equivalent"])
        assert (equal["outcome"] == "fails") == bool(tost["different"])


def test_primary_comparisons_are_decided_as_one_family():
    cells = {("visual_bert", p, t): v for t in ("vqa_d", "vizwiz")
             for p, v in (("none", 50.0), ("coco", 58.0), ("cc_small", 49.0))}
    whole = _rows(cells, frozen=False)
    frozen = _rows({k: v - 5 * (k[1] == "none") for k, v in cells.items()}, frozen=True)
    results = pd.concat([whole, frozen], ignore_index=True)
    primary = [{"arch": "visual_bert", "task": "vqa_d", "a": "coco", "b": "none"},
               {"arch": "visual_bert", "task": "vqa_d", "a": "cc_small", "b": "coco"},
               {"arch": "visual_bert", "task": "vizwiz", "a": "cc_small", "b": "none", "frozen": True}]
    got = verdicts.primary_comparisons(results, primary)
    assert got["decision"].tolist() == ["supported", "contradicted", "supported"]
    assert got["comparison"].iloc[2] == "VizWiz: VisualBERT CC-small (frozen base) > VisualBERT none (frozen base)"
    with pytest.raises(ValueError, match="was not run"):
        verdicts.primary_comparisons(results, [{"arch": "vilbert", "task": "vqa_d", "a": "coco", "b": "none"}])
    with pytest.raises(ValueError, match="names arch, task, a, b"):
        verdicts.primary_comparisons(results, [{"arch": "visual_bert", "task": "vqa_d", "a": "coco", "c": 1}])
    assert verdicts.primary_cells(primary) == [          # each cell once, in order
        ("visual_bert", "coco", "vqa_d", False), ("visual_bert", "none", "vqa_d", False),
        ("visual_bert", "cc_small", "vqa_d", False), ("visual_bert", "cc_small", "vizwiz", True),
        ("visual_bert", "none", "vizwiz", True)]
    with pytest.raises(ValueError, match="names arch, task, a, b"):
        verdicts.primary_cells([{"arch": "visual_bert", "a": "coco", "b": "none"}])
    sens = verdicts.sensitivity(results, ["coco", "cc_small"]).set_index(["task", "training"])
    assert sens["passes"].all() and sens.loc[("VQA-D", "whole"), "best gain"] == pytest.approx(8, abs=0.3)
    assert sens.loc[("VQA-D", "whole"), "sets beating direct training (Holm)"] == "COCO"
    one_block = results[(results["pretrained_on"] != "cc_small") | (results["block"] == 0)]
    sens = verdicts.sensitivity(one_block, ["coco", "cc_small"]).set_index(["task", "training"])
    assert sens["passes"].all() and (sens["sets at one block (not judged)"] == "CC-small").all()
    flat = verdicts.sensitivity(_rows(cells, noise=30.0, frozen=False), ["cc_small"])
    assert not flat["passes"].any()


def test_beside_paper_sets_the_papers_number_and_refuses_a_row_it_lacks():
    cells = {("visual_bert", "coco", "vqa_d"): 60.0, ("visual_bert", "none", "vqa_d"): 55.0}
    table = verdicts.beside_paper(_rows(cells), "table1_finetune").set_index("pretrained on")
    assert table.loc["COCO", "paper"] == 69.90 and table.loc["none", "paper"] == 68.28   # the CSV's numbers
    assert table.loc["COCO", "blocks"] == 3
    beyond = _rows({**cells, ("visual_bert", "ccg", "vqa_d"): 58.0})        # CCG is in Table D.1, not Table 1
    with pytest.raises(ValueError, match=r"table1_finetune has no row for VisualBERT pretrained on 'CCG'"):
        verdicts.beside_paper(beyond, "table1_finetune")
    shown = verdicts.beside_paper(beyond, "table1_finetune", beyond=("ccg",)).set_index("pretrained on")
    assert np.isnan(shown.loc["CCG", "paper"]) and shown.loc["COCO", "paper"] == 69.90


def test_comparisons_are_decided_on_the_continuous_score_beside_accuracy():
    """Where the results carry ``test_log_likelihood``, each directional comparison is decided
    on it too (nats, its own per-example scores), and so are the claim and the primary family;
    where the two scores disagree in direction the row and the claim say so."""
    rng = np.random.default_rng(8)
    cells = {("visual_bert", p, t): v for t in ("vqa_d", "vizwiz") for p, v in (("coco", 60.0), ("vqa_p", 59.0),
                                                                              ("cc_small", 55.0))}
    rows = _rows(cells, blocks=(0, 1, 2, 3), noise=0.3).assign(run=lambda d: [f"r{i}" for i in range(len(d))])
    # the continuous score follows accuracy, except VQA-P on VizWiz, where it runs the other way
    flipped = (rows["pretrained_on"] == "vqa_p") & (rows["task"] == "vizwiz")
    rows["test_log_likelihood"] = -2.0 + rows["test_score"] / 100 - 0.2 * flipped + rng.normal(0, 0.002, len(rows))
    per_example = {r: np.full(50, v) + np.linspace(-0.01, 0.01, 50) for r, v in zip(rows["run"], rows["test_log_likelihood"])}
    examples = lambda run, metric="test_score": per_example[run] if metric == "test_log_likelihood" else None
    claims, detail = evaluate_claims(rows, archs=("visual_bert",), examples=examples)
    c1 = claims.set_index("claim").loc["C1"]
    assert c1["decision"] == "supported" and c1["continuous decision"] == "contradicted"
    assert "1 of 4 comparisons disagree with accuracy in direction" in c1["reason"]
    row = detail.set_index("comparison").loc["VizWiz: VisualBERT VQA-P > VisualBERT CC-small"]
    assert row["directions"] == "disagree" and row["continuous outcome"] == "reversed" and row["continuous"] < 0
    assert (detail["directions"] == "agree").sum() == 3
    c2 = claims.set_index("claim").loc["C2"]
    assert c2["continuous decision"] == ""                 # equivalence in points has no margin in nats
    primary = verdicts.primary_comparisons(rows.assign(frozen=False), [
        {"arch": "visual_bert", "task": "vizwiz", "a": "vqa_p", "b": "cc_small"}], examples)
    assert primary["continuous decision"].iloc[0] == "contradicted" and primary["directions"].iloc[0] == "disagree"
    without = evaluate_claims(rows.drop(columns="test_log_likelihood"), archs=("visual_bert",))[0]
    assert (without["continuous decision"] == "").all()
