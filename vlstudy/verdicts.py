"""Our evidence for the paper's claims: our tables beside the paper's, and calibrated verdicts.

The unit of replication is a block (one pretraining seed: BERT stage, pretraining, its
finetuning runs). A comparison of two cells is decided by ``stats.t_interval`` on block
means (paired where both cells share blocks), with the test set's sampling variance added
from per-example scores where the metric is a mean over examples:

- "A beats B" holds when the 95 % interval of A − B excludes 0 on the claimed side, is
  reversed when it excludes 0 on the other side, and is otherwise undecided, with the
  minimum detectable effect at this budget beside it.
- "A ≈ B" and "A does not beat B" are equivalence (TOST) and non-superiority tests against a
  margin stated per claim in ``MARGINS``, with the reason for it.
- A claim is decided by the logic its own words give it (``paper/claims.md``, column
  ``needs``): most claim something of every comparison ("for both models", "on every task"),
  an intersection–union test: supported when each comparison holds at 5 % on its own,
  contradicted when one is reversed after Holm's correction over the claim. "On most tasks"
  needs a majority after Holm; a claim about a mean (none of C1–C25) is decided on the mean.

The words are few and the same everywhere: supported, contradicted, undecided, not measured.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats as sps

from . import stats
from .paper import claims as paper_claims
from .paper import table as paper_table
from .sides import METRIC_NAMES, MODEL_NAMES, SOURCE_NAMES, TASK_NAMES, Side, source_name

# our (task, metric) → the paper tables' column
PAPER_COLUMNS = {("vqa_d", "test_score"): "vqa_d_acc", ("vizwiz", "test_score"): "vizwiz_acc",
                 ("snli_ve", "test_score"): "snli_ve_acc", ("mmimdb", "test_score"): "mmimdb_micro_f1",
                 ("mmimdb", "test_macro_f1"): "mmimdb_macro_f1"}
PRETRAINED = ("coco", "vqa_p", "cc_small")   # the paper's Table 1 pretraining sets
# The continuous score decided beside accuracy (nats per example; tasks.Task.log_likelihood):
# more signal per unit of noise at small scale (DataDecide; "Signal and Noise"). The claims are
# judged on accuracy, the paper's metric; this says whether the continuous score agrees.
CONTINUOUS = "test_log_likelihood"
PER_EXAMPLE = ("test_score", CONTINUOUS)     # metrics whose per-example scores ``examples`` gives
ALPHA = 0.05
DECISIONS = ("supported", "contradicted", "undecided", "not measured")
# Margins of the "about equal" / "not better" claims, in points, and why.
MARGINS = {
    "C2": (1.0, "Table 1 reads gaps of 0.04-0.56 points between COCO and VQA-P as equal and gaps of "
                "0.7-1.5 points to CC-small as effects (C1): within 1 point is equal"),
    "C10": (1.0, "a gain under 1 point is no gain: the smallest Table 1 gaps the paper reads as effects are "
                 "0.7-1.5 points"),
    "C20": (1.0, "Table D.1 calls CCG competitive at 0.1-0.3 points below CC; 1 point, as for C2"),
}
# "for the claim": what a comparison counts as in its claim's logic (holds, against, undecided);
# "continuous" .. "directions": the same comparison on the continuous score (nats)
COMPARISON_COLUMNS = ["comparison", "claimed side", "other side", "difference", "low", "high", "unit", "p",
                      "mde", "blocks", "outcome", "after Holm", "for the claim", "continuous", "continuous low",
                      "continuous high", "continuous outcome", "directions", "bootstrap low", "bootstrap high",
                      "reason"]
# a claim's row: "effect" .. "mde" are those of its deciding comparison (see decide)
CLAIM_COLUMNS = ["claim", "statement", "needs", "effect", "low", "high", "unit", "mde", "deciding", "holding",
                 "comparisons", "decision", "continuous decision", "reason"]


def summarize(results: pd.DataFrame, metric: str = "test_score") -> pd.DataFrame:
    """Per (arch, pretrained_on, task): the mean, the sd of the block means (the replicates)
    and the number of blocks."""
    blocks = "block" if "block" in results else "seed"
    per_block = results.groupby(["arch", "pretrained_on", "task", blocks], sort=False)[metric].mean()
    g = per_block.groupby(["arch", "pretrained_on", "task"], sort=False)
    return g.agg(mean="mean", sd="std", n="count").reset_index()


def beside_paper(results: pd.DataFrame, paper_name: str, paper_sources: dict | None = None,
                 beyond: tuple[str, ...] = ()) -> pd.DataFrame:
    """Our mean ± sd over blocks next to the paper's number for every cell both have.
    ``paper_sources``: our source → the paper table's row to set beside it, where the names
    differ (Table D.1 has one CC row, not Table 1's CC-small: our CC-small stands beside it).
    A cell with no row in the paper's table is an error naming both sides (a name that does
    not match would otherwise hide as a blank), unless its source is listed in ``beyond``
    (pretraining sets the paper did not have): those get no paper number."""
    paper = paper_table(paper_name)
    renamed = {SOURCE_NAMES[k]: v for k, v in (paper_sources or {}).items()}
    rows = []
    for (task, metric), column in PAPER_COLUMNS.items():
        if metric not in results or task not in set(results["task"]):
            continue
        for _, r in summarize(results[results["task"] == task], metric).iterrows():
            ours, model = SOURCE_NAMES[r["pretrained_on"]], MODEL_NAMES[r["arch"]]
            match = paper[(paper["model"] == model) & (paper["pretrained_on"] == renamed.get(ours, ours))]
            if match.empty and r["pretrained_on"] not in beyond:
                rows_there = sorted(set(zip(paper["model"], paper["pretrained_on"])))
                raise ValueError(f"{paper_name} has no row for {model} pretrained on {renamed.get(ours, ours)!r} "
                                 f"(our {r['pretrained_on']!r}); its rows: {rows_there}. Map the name with "
                                 "paper_sources, or list the set in beyond if the paper did not have it")
            rows.append({"model": model, "pretrained on": ours,
                         "task": TASK_NAMES[task] + (" macro-F1" if metric == "test_macro_f1" else ""),
                         "ours": _mean_sd(r["mean"], r["sd"]), "blocks": int(r["n"]),
                         "paper": float(match[column].iloc[0]) if len(match) else float("nan")})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Comparison:
    """Two cells of the results: ``a`` (the side claimed higher, or equal) and ``b``, each a
    ``Side`` or a pretraining set's name (its whole set)."""
    arch: str
    task: str
    a: Side
    b: Side
    kind: str = "greater"    # "greater", "equal", or "not_greater" (a does not beat b)
    arch_b: str | None = None  # compare two models instead of two pretraining sets
    metric: str = "test_score"

    def __post_init__(self):
        object.__setattr__(self, "a", Side.of(self.a))
        object.__setattr__(self, "b", Side.of(self.b))

    def label(self) -> str:
        left = f"{MODEL_NAMES[self.arch]} {self.a.name()}"
        right = f"{MODEL_NAMES[self.arch_b or self.arch]} {self.b.name()}"
        sign = {"greater": ">", "equal": "≈", "not_greater": "≯"}[self.kind]
        metric = "" if self.metric == "test_score" else f" ({METRIC_NAMES.get(self.metric, self.metric)})"
        return f"{TASK_NAMES.get(self.task, self.task)}{metric}: {left} {sign} {right}"


# --- one comparison -------------------------------------------------------------------------
def _arm(results: pd.DataFrame, arch: str, side: Side, task: str, metric: str, examples) -> stats.Arm | None:
    """A cell's runs as a ``stats.Arm``: blocks, scores and, where ``examples`` gives them (run
    id → per-example test scores; ``examples(run, CONTINUOUS)`` for the continuous score), the
    per-example scores behind ``test_score`` or the continuous score."""
    sel = side.rows(results[(results["arch"] == arch) & (results["task"] == task)])
    if sel.empty:
        return None
    per_example = None
    if examples is not None and metric in PER_EXAMPLE and "run" in sel:
        arrays = [examples(run) if metric == "test_score" else examples(run, metric) for run in sel["run"]]
        if all(a is not None for a in arrays) and len({len(a) for a in arrays}) == 1:
            per_example = np.stack(arrays)                    # (runs, test examples)
    blocks = sel["block"] if "block" in sel else sel["seed"]
    return stats.Arm.of(blocks.to_numpy(int), sel[metric].to_numpy(float), per_example)


def _sides(a: stats.Arm, b: stats.Arm) -> dict:
    means = [a.block_means, b.block_means]
    return {"claimed side": _mean_sd(*_spread(means[0])) + f" ({len(means[0])})",
            "other side": _mean_sd(*_spread(means[1])) + f" ({len(means[1])})"}


def _spread(values: np.ndarray) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else float("nan")


def _mean_sd(mean: float, sd: float) -> str:
    """"54.40 ± 2.41": mean ± sd over blocks ("54.40 ± —" with one block)."""
    return f"{mean:.2f} ± " + ("—" if sd != sd else f"{sd:.2f}")


def _outcome(kind: str, p_claimed: float, p_opposite: float) -> str:
    """Every test at ``ALPHA``: "greater" on its two-sided p (the 95 % interval), "equal" and
    "not_greater" on their one-sided p (TOST: the 90 % interval) and their opposites on the 95 %
    interval beyond the margin."""
    if p_claimed < ALPHA:
        return "holds"
    if p_opposite < ALPHA:
        return "reversed" if kind == "greater" else "fails"
    return "undecided"


def _tests(kind: str, a: stats.Arm, b: stats.Arm, margin: float | None) -> tuple[stats.Interval, tuple[float, float]]:
    """The 95 % interval of a − b and (p of the claimed outcome, p of its opposite), from the
    same ``stats`` function that defines each test."""
    iv = stats.t_interval(a, b)
    if kind == "greater":
        return iv, ((iv.p if iv.difference > 0 else 1.0), (iv.p if iv.difference < 0 else 1.0))
    if kind == "equal":
        tost = stats.equivalence(a, b, margin, alpha=ALPHA)
        return iv, (tost["p"], tost["p_different"])
    below = stats.not_greater(a, b, margin, alpha=ALPHA)
    return iv, (below["p"], below["p_fails"])


def compare(results: pd.DataFrame, c: Comparison, examples=None, margin: float | None = None) -> dict | None:
    """One comparison's evidence and outcome (None when a side was not run). ``examples``:
    run id → per-example test scores, for the test-sampling term; ``margin`` for "equal" and
    "not_greater" comparisons."""
    a = _arm(results, c.arch, c.a, c.task, c.metric, examples)
    b = _arm(results, c.arch_b or c.arch, c.b, c.task, c.metric, examples)
    if a is None or b is None:
        return None
    if c.kind not in ("greater", "equal", "not_greater"):
        raise ValueError(f"{c.label()}: unknown comparison kind {c.kind!r}")
    if c.kind != "greater" and margin is None:
        raise ValueError(f"{c.label()}: an {c.kind!r} comparison needs a margin")
    unit = {"test_score": "points", CONTINUOUS: "nats"}.get(c.metric, METRIC_NAMES.get(c.metric, c.metric))
    row = {"comparison": c.label(), **_sides(a, b), "unit": unit,
           "_arms": (a, b), "_kind": c.kind, "_margin": margin,
           "blocks": min(len(a.block_ids), len(b.block_ids))}
    if row["blocks"] < 2:      # no interval; p = 1 either way, so Holm over the claim still counts it
        return {**row, "difference": a.mean - b.mean,
                "outcome": "undecided", "reason": "one block: no replicate to judge a difference by",
                "_p": (1.0, 1.0)}
    iv, p = _tests(c.kind, a, b, margin)
    boot = stats.hierarchical_bootstrap(a, b)
    # the interval an "equal" / "not_greater" comparison is decided on: the (1−2α) one (TOST)
    decided_on = iv if c.kind == "greater" else stats.t_interval(a, b, level=1 - 2 * ALPHA)
    return {**row, "difference": iv.difference, "low": iv.low, "high": iv.high, "p": p[0],
            "mde": _mde(c.kind, iv), "outcome": _outcome(c.kind, *p), "bootstrap low": boot.low,
            "bootstrap high": boot.high, "_p": p, "_interval": iv, "_decided_on": decided_on,
            "reason": f"margin ±{margin:g}" if margin is not None else ""}


def _mde(kind: str, iv: stats.Interval) -> float:
    """Directional: the effect found with 80 % power at this budget. Equivalence: the margin
    that a true difference of 0 would be shown within, with 80 % power."""
    if kind == "greater":
        return stats.min_detectable_effect(iv.se, iv.df)
    t = (lambda q: sps.t.ppf(q, iv.df)) if math.isfinite(iv.df) else sps.norm.ppf
    return float((t(1 - ALPHA) + t(0.9)) * iv.se)


# --- a claim --------------------------------------------------------------------------------
AGAINST = ("reversed", "fails")


def adjust(done: list[dict]) -> None:
    """Holm's correction over a family of comparisons (``compare`` rows): fills each row's
    "after Holm" from both its p-values (one-block rows carry p = 1)."""
    if not done:
        return
    claimed = stats.holm([d["_p"][0] for d in done])
    opposite = stats.holm([d["_p"][1] for d in done])
    for d, pc, po in zip(done, claimed, opposite):
        d["after Holm"] = _outcome(d["_kind"], pc, po)


def needs(claim: str) -> str:
    """A claim's logic from the catalogue (``paper/claims.md``): all, most, mean or rankings.
    A family that is not a claim (the primary comparisons) is decided comparison by comparison."""
    table = paper_claims().set_index("id")["needs"]
    if claim not in table:
        raise ValueError(f"no claim {claim!r} in the catalogue; known: {list(table.index)}")
    return table[claim]


def decide(claim: str, done: list[dict], logic: str | None = None) -> dict:
    """A claim's decision from its comparisons (``compare`` rows), by the claim's logic
    (``needs``; ``logic`` overrides it). Adds "after Holm" to each row.

    - all: an intersection–union test. Supported when every comparison holds at α on its own
      (no correction is needed for that: each must clear α); contradicted when some comparison
      is reversed (or fails its margin) after Holm over the claim; undecided otherwise.
    - most: supported when more than half hold after Holm, contradicted when so many are
      against after Holm that a majority cannot hold.
    - mean: the mean of the comparisons' differences (each weighted alike, one unit), decided by
      its own interval (``stats.pooled_interval``).
    The claim's effect, interval and mde are those of the comparison that decides it: the
    weakest that had to hold (all), the majority's weakest (most), the strongest against
    (contradicted)."""
    if not done:
        return {"decision": "not measured", "reason": "no comparison of this claim was run"}
    logic = logic or needs(claim)
    if logic not in ("all", "most", "mean"):
        raise ValueError(f"claim {claim}: decide() takes the logic all, most or mean, not {logic!r}")
    adjust(done)
    n = len(done)
    by_claimed = sorted(done, key=lambda d: d["_p"][0])            # strongest first
    if logic == "mean":
        return _decide_mean(done)
    if logic == "all":
        holding = sum(d["outcome"] == "holds" for d in done)
        needed, quantity = n, "all"
        holding_words = f"{holding} of {n} hold at 5 %"
    else:
        holding = sum(d["after Holm"] == "holds" for d in done)
        needed, quantity = n // 2 + 1, f"{n // 2 + 1} of {n}"
        holding_words = f"{holding} of {n} hold after Holm"
    against = [d for d in done if d["after Holm"] in AGAINST]
    for d in done:          # what each comparison counts as in this claim's logic
        counts = d["outcome"] if logic == "all" else d["after Holm"]
        d["for the claim"] = "against" if d in against else "holds" if counts == "holds" else "undecided"
    out = {"holding": holding, "comparisons": n, "needs": logic}
    if holding >= needed:
        return {**out, **_deciding(by_claimed[needed - 1]), "decision": "supported",
                "reason": f"{holding_words}; {quantity} needed"}
    if len(against) > n - needed:
        strongest = min(against, key=lambda d: d["_p"][1])
        return {**out, **_deciding(strongest), "decision": "contradicted",
                "reason": f"{len(against)} of {n} {'reversed' if strongest['_kind'] == 'greater' else 'fail'} "
                          f"after Holm; {quantity} needed"}
    one_block = sum(d["blocks"] < 2 for d in done)
    return {**out, **_deciding(by_claimed[needed - 1]), "decision": "undecided",
            "reason": f"{holding_words}; {quantity} needed"
                      + (f"; {one_block} of {n} have one block: no replicate to judge by" if one_block else "")}


def _deciding(d: dict) -> dict:
    """The claim's effect columns from the comparison that decides it, with the interval it
    was decided on: the 95 % one for "greater", the 90 % one (TOST) for "equal" and
    "not_greater"."""
    nan = float("nan")
    interval = d.get("_decided_on")
    tost = d["_kind"] != "greater" and interval is not None
    return {"effect": d["difference"], "low": interval.low if interval else nan,
            "high": interval.high if interval else nan, "mde": d.get("mde", nan), "unit": d["unit"],
            "deciding": d["comparison"] + (" (90 % interval, the TOST's)" if tost else "")}


def _decide_mean(done: list[dict]) -> dict:
    """A claim about the mean of its comparisons (one unit, each comparison weighted alike,
    "greater" comparisons only: a mean of equivalences has no margin of its own)."""
    units = {d["unit"] for d in done}
    if len(units) > 1:
        raise ValueError(f"a claim about a mean needs one unit; its comparisons are in {sorted(units)}")
    if any(d["_kind"] != "greater" for d in done):
        raise ValueError("a claim about a mean is made of 'greater' comparisons")
    out = {"holding": sum(d["outcome"] == "holds" for d in done), "comparisons": len(done), "needs": "mean",
           "unit": units.pop(), "deciding": f"the mean of {len(done)} comparisons"}
    if any(d["blocks"] < 2 for d in done):
        return {**out, "effect": float(np.mean([d["difference"] for d in done])), "decision": "undecided",
                "reason": "a comparison has one block: no replicate to judge by"}
    iv = stats.pooled_interval([(*d["_arms"], 1, d["_example_set"]) for d in done])
    out.update(effect=iv.difference, low=iv.low, high=iv.high, mde=stats.min_detectable_effect(iv.se, iv.df))
    judged = "holds" if iv.low > 0 else "against" if iv.high < 0 else "undecided"
    for d in done:                    # a mean claim stands or falls as one
        d["for the claim"] = judged
    if iv.low > 0:
        return {**out, "decision": "supported", "reason": "the mean's interval is above 0"}
    if iv.high < 0:
        return {**out, "decision": "contradicted", "reason": "the mean's interval is below 0"}
    return {**out, "decision": "undecided", "reason": "the mean's interval spans 0"}


def on_the_continuous_score(results: pd.DataFrame, c: Comparison, examples, accuracy: dict) -> dict | None:
    """A directional accuracy comparison decided again on the continuous score (a compare
    row), with the columns it adds to the accuracy row: its difference and interval in nats,
    its outcome, and whether the two scores agree in direction. None where the results have no
    continuous score or the comparison is not a directional one on ``test_score`` (a margin in
    points says nothing in nats)."""
    if c.metric != "test_score" or c.kind != "greater" or CONTINUOUS not in results:
        return None
    if results.loc[results["task"] == c.task, CONTINUOUS].isna().any():
        return None                                   # runs made before they wrote it
    d = compare(results, replace(c, metric=CONTINUOUS), examples)
    if d is None:
        return None
    same = np.sign(d["difference"]) * np.sign(accuracy["difference"])
    accuracy.update({"continuous": d["difference"], "continuous low": d.get("low", float("nan")),
                     "continuous high": d.get("high", float("nan")), "continuous outcome": d["outcome"],
                     "directions": "agree" if same > 0 else "disagree" if same < 0 else "—"})
    return {**d, "_metric": CONTINUOUS, "_example_set": c.task}


def evaluate_comparisons(results: pd.DataFrame, claims: dict[str, list[Comparison]],
                         examples=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(one row per claim with its decision, one row per comparison behind them). Where the
    results carry the continuous score, every directional comparison is decided on it too,
    beside accuracy, and so is the claim (``continuous decision``); the claims are judged on
    accuracy."""
    claim_rows, detail_rows = [], []
    for cid, comparisons in claims.items():
        margin = MARGINS.get(cid, (None, ""))[0]
        done, continuous = [], []
        for c in comparisons:
            d = compare(results, c, examples, margin if c.kind != "greater" else None)
            if d is not None:
                done.append({**d, "_metric": c.metric, "_example_set": c.task})
                e = on_the_continuous_score(results, c, examples, done[-1])
                if e is not None:
                    continuous.append(e)
        decision = decide(cid, done)
        if continuous and len(continuous) == len(done):
            again = decide(cid, continuous)
            split = sum(d.get("directions") == "disagree" for d in done)
            decision = {**decision, "continuous decision": again["decision"],
                        "reason": decision["reason"] + f"; on the continuous score: {again['decision']}"
                        + (f", {split} of {len(done)} comparisons disagree with accuracy in direction" if split else "")}
        detail_rows += [{"claim": cid, **{k: v for k, v in d.items() if not k.startswith("_")}} for d in done]
        claim_rows.append(_claim_row(cid, decision))
    return pd.DataFrame(claim_rows), pd.DataFrame(detail_rows, columns=["claim"] + COMPARISON_COLUMNS)


def evaluate_claims(results: pd.DataFrame, which: str = "table1", archs=("visual_bert", "vilbert"),
                    examples=None, **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(claims with decisions, every comparison behind them) for a claim set. ``examples``: run
    id → per-example test scores (``Study.test_examples``); ``options`` go to the claim set
    (the size claims take the ``fractions`` swept)."""
    if which not in CLAIM_SETS:
        raise ValueError(f"unknown claim set {which!r}; known: {sorted(CLAIM_SETS)}")
    return evaluate_comparisons(results, CLAIM_SETS[which](archs, **options), examples)


def _claim_row(claim: str, decision: dict) -> dict:
    text = paper_claims().set_index("id")
    nan = float("nan")
    reason = decision["reason"]
    if claim in MARGINS:
        reason += f"; margin ±{MARGINS[claim][0]:g} points: {MARGINS[claim][1]}"
    return {"claim": claim, "section": text.loc[claim, "section"], "statement": text.loc[claim, "claim"],
            "needs": text.loc[claim, "needs"], **{k: decision.get(k, nan) for k in ("effect", "low", "high", "mde")},
            "unit": decision.get("unit", ""), "deciding": decision.get("deciding", ""),
            "holding": decision.get("holding", 0), "comparisons": decision.get("comparisons", 0),
            "decision": decision["decision"], "continuous decision": decision.get("continuous decision", ""),
            "reason": reason}


def _table1_claims(archs) -> dict[str, list[Comparison]]:
    out = {
        "C1": [Comparison(m, t, s, "cc_small") for m in archs for t in ("vqa_d", "vizwiz", "snli_ve")
               for s in ("coco", "vqa_p")],
        "C2": [Comparison(m, t, "coco", "vqa_p", "equal") for m in archs for t in ("vqa_d", "vizwiz")],
        "C3": [Comparison(m, "snli_ve", "coco", s) for m in archs for s in ("vqa_p", "cc_small")],
        "C4": [Comparison(m, "mmimdb", "none", s) for m in archs for s in PRETRAINED],
        "C8": [Comparison(m, "vizwiz", "vqa_p", "none") for m in archs],
        "C11": [Comparison("vilbert", "snli_ve", "none", "cc_small")] if "vilbert" in archs else [],
    }
    return {**out, **_model_claims(archs, frozen=(False,))}


def _size_claims(archs, fractions=(0.25, 0.5, 1.0), task="vqa_d") -> dict[str, list[Comparison]]:
    """Fig. 3a: each set at ``fractions`` of its training split (same updates), and all of CC
    ("cc_full" at fraction 1, its own number of updates)."""
    lo, hi = min(fractions), max(fractions)
    return {
        "C5": [Comparison(m, task, Side(d, hi), Side(d, lo)) for m in archs for d in PRETRAINED],
        "C6": [Comparison(m, task, Side(d, f), Side("cc_small", f)) for m in archs for f in fractions
               for d in ("coco", "vqa_p")],
        "C7": [Comparison(m, task, Side(d, hi), Side("cc_full", 1.0)) for m in archs for d in ("coco", "vqa_p")],
    }


def _frozen_claims(archs) -> dict[str, list[Comparison]]:
    """Table 2 (results of frozen-base finetuning)."""
    out = {
        "C9": [Comparison("visual_bert", t, s, "none") for t in TASK_NAMES for s in PRETRAINED]
        if "visual_bert" in archs else [],
        "C10": [Comparison("vilbert", t, s, "none", "not_greater") for t in TASK_NAMES for s in ("coco", "cc_small")]
        if "vilbert" in archs else [],
        "C12": [Comparison(m, t, "vqa_p", s) for m in archs for t in ("vqa_d", "vizwiz", "snli_ve")
                for s in ("none", "coco", "cc_small")],
    }
    return {k: v for k, v in out.items() if v}


def _distance_claims(archs, task="vqa_d") -> dict[str, list[Comparison]]:
    """Fig. 4 and C.1, on per-run mean distances (columns ``l1`` and ``angular``): a larger
    distance on the other side means VQA-P's weights stayed closer."""
    return {
        "C14": [Comparison(m, task, s, "vqa_p", metric=d) for m in archs for s in ("none", "coco", "cc_small")
                for d in ("l1", "angular")],
        "C15": [Comparison(m, task, "random", "vqa_p", metric=d) for m in archs for d in ("l1", "angular")],
    }


def _model_claims(archs, sources=("none",) + PRETRAINED, frozen=(False, True)) -> dict[str, list[Comparison]]:
    """C21: VisualBERT against ViLBERT in every cell; by default over whole and frozen-base
    results, Table 1's over whole results only."""
    if not {"visual_bert", "vilbert"} <= set(archs):
        return {}
    return {"C21": [Comparison("visual_bert", t, Side(s, frozen=f), Side(s, frozen=f), arch_b="vilbert")
                    for f in frozen for t in TASK_NAMES for s in sources]}


def _checkpoint_claims(archs, checkpoints=(), task="vqa_d") -> dict[str, list[Comparison]]:
    """§3.6: ``checkpoints`` are ``Side``s of one set at different updates, ordered from the
    lowest pretraining validation loss to the highest; finetuned, each beats the next (C22);
    frozen, the order reverses (C23)."""
    pairs = list(zip(checkpoints, checkpoints[1:]))
    return {"C22": [Comparison(m, task, replace(a, frozen=False), replace(b, frozen=False)) for m in archs
                    for a, b in pairs],
            "C23": [Comparison(m, task, replace(b, frozen=True), replace(a, frozen=True)) for m in archs
                    for a, b in pairs]}


def _synthetic_claims(archs, fractions=(), task="vqa_d") -> dict[str, list[Comparison]]:
    """§3.4 and Table D.1 on whole finetuning: "ccg", "cc_small", "coco", "vqa_p", and CCG at
    the ``fractions`` of its size sweep."""
    out = {
        "C16": [Comparison(m, task, "ccg", "cc_small") for m in archs],
        "C17": [Comparison(m, task, s, "ccg") for m in archs for s in ("coco", "vqa_p")],
        "C18": [Comparison(m, task, Side("ccg", max(fractions)), Side("ccg", min(fractions))) for m in archs]
        if len(fractions) > 1 else [],
        "C20": [Comparison(m, t, "cc_small", "ccg", "not_greater") for m in archs for t in ("vizwiz", "snli_ve")],
    }
    return {k: v for k, v in out.items() if v}


def _synthetic_distance_claims(archs, task="vqa_d") -> dict[str, list[Comparison]]:
    """Fig. 5 / C.3 on per-run mean distances: larger on CC's side means CCG's stayed closer."""
    return {"C19": [Comparison(m, task, "cc_small", "ccg", metric=d) for m in archs for d in ("l1", "angular")]}


CLAIM_SETS = {"synthetic": _synthetic_claims, "synthetic_distances": _synthetic_distance_claims,
              "table1": _table1_claims, "size": _size_claims, "frozen": _frozen_claims,
              "distances": _distance_claims, "models": _model_claims, "checkpoints": _checkpoint_claims}


def rankings_differ(results: pd.DataFrame, claim: str, task: str, archs, metric: str = "test_score",
                    examples=None) -> dict:
    """A claim that two models rank the pretraining sets differently on ``task`` (C13).

    Each model's best set is chosen on the validation scores (``val_`` beside ``test_``: its
    mean over blocks) and tested on the test scores, so the choice never sees the test
    examples; it does see the same runs, whose blocks are the unit of replication, so a set
    that got lucky blocks stays lucky on test (the test is not independent of the choice in
    that). Supported when
    the two models' best sets differ and each beats the other's within its model (an
    intersection–union test: both hold at α); contradicted when both models' best set is the
    same and beats every other set for each model; undecided otherwise. Without validation
    scores the best is chosen on the test scores themselves, and the reason says so: a
    selection and a test on one sample, optimistic."""
    select_on = metric.replace("test_", "val_", 1) if metric.startswith("test_") else None
    one_sample = select_on is None or select_on not in results
    chooser = metric if one_sample else select_on
    best = {}
    for m in archs:
        rows = results[(results["arch"] == m) & (results["task"] == task)]
        means = {}
        for source in sorted(rows["pretrained_on"].unique()):
            chosen = Side(source).rows(rows)
            if not chosen.empty:                                        # whole sets only
                means[source] = float(chosen.groupby(chosen["block"] if "block" in chosen else chosen["seed"])
                                      [chooser].mean().mean())            # blocks weigh alike
        if means:
            best[m] = max(means, key=means.get)
    if len(best) < 2:
        return _claim_row(claim, {"decision": "not measured", "reason": "needs both models"})
    (m1, b1), (m2, b2) = list(best.items())[:2]
    named = "; ".join(f"best for {MODEL_NAMES[m]}: {source_name(b)}" for m, b in best.items())
    named += (" (chosen and tested on the same test scores: selection on one sample)" if one_sample
              else f" (chosen on {chooser}, tested on {metric})")
    if b1 != b2:
        checks = [Comparison(m1, task, b1, b2, metric=metric), Comparison(m2, task, b2, b1, metric=metric)]
    else:
        others = sorted(set(results["pretrained_on"][results["task"] == task]) - {b1})
        checks = [Comparison(m, task, b1, o, metric=metric) for m in (m1, m2) for o in others]
    done = [{**d, "_metric": metric, "_example_set": task}
            for c in checks if (d := compare(results, c, examples)) is not None]
    if not done:
        return _claim_row(claim, {"decision": "not measured", "reason": f"{named}; no other set to compare with"})
    decision = decide(claim, done, logic="all")
    if b1 == b2:            # the same best set beating every other set contradicts the claim
        decision = {**decision, "decision": "contradicted" if decision["decision"] == "supported" else "undecided"}
    elif decision["decision"] == "contradicted":    # a best set reversed is no evidence of the same ranking
        decision = {**decision, "decision": "undecided"}
    return _claim_row(claim, {**decision, "reason": f"{named}; {decision['reason']}"})


def pretraining_loss_claims(losses: pd.DataFrame, archs, examples=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Table B.1's claims on pretraining validation MLM losses, one loss per pretraining run
    (the block is the replicate). ``losses``: arch, sweep, dataset, fraction, block, mlm_loss.
    C24: same updates, COCO lowest and CC highest; C25: same epochs, more CC lower."""
    table = losses.assign(pretrained_on=losses["dataset"], task="pretraining")
    full = table["fraction"][table["sweep"] == "same updates"].max() if (table["sweep"] == "same updates").any() else 1
    cc = sorted(table["fraction"][table["sweep"] == "same epochs"].unique())
    claims = {
        "C24": [Comparison(m, "pretraining", Side(hi, full), Side(lo, full), metric="mlm_loss") for m in archs
                for hi, lo in (("vqa_p", "coco"), ("cc_small", "coco"), ("cc_small", "vqa_p"))],
        "C25": [Comparison(m, "pretraining", Side("cc_full", small), Side("cc_full", big), metric="mlm_loss")
                for m in archs for small, big in zip(cc, cc[1:])],
    }
    return evaluate_comparisons(table, claims, examples)


# --- the profile's primary comparisons and the test bed's sensitivity ------------------------
PRIMARY_COLUMNS = ["comparison", "claimed side", "other side", "difference", "low", "high", "p", "mde",
                   "blocks", "outcome", "after Holm", "decision", "continuous", "continuous low", "continuous high",
                   "continuous decision", "directions"]
WORDS = {"holds": "supported", "reversed": "contradicted", "fails": "contradicted", "undecided": "undecided"}


def _within(arch: str, task: str, a: str, b: str, frozen: bool = False) -> Comparison:
    """Two pretraining sets compared whole or with the base frozen (``frozen`` pins both)."""
    return Comparison(arch, task, Side(a, frozen=frozen), Side(b, frozen=frozen))


def primary_cells(primary: list[dict]) -> list[tuple[str, str, str, bool]]:
    """The (arch, pretraining set, task, frozen) cells the primary comparisons read, each once:
    a profile gives them more blocks than the rest of the grid (``primary_blocks``)."""
    cells = []
    for entry in primary:
        _check_primary(entry)
        for side in (entry["a"], entry["b"]):
            cells.append((entry["arch"], side, entry["task"], bool(entry.get("frozen", False))))
    return list(dict.fromkeys(cells))


def _check_primary(entry: dict) -> None:
    unknown = sorted(set(entry) - {"arch", "task", "a", "b", "frozen"})
    if unknown or not {"arch", "task", "a", "b"} <= set(entry):
        raise ValueError(f"a primary comparison names arch, task, a, b (and frozen), got {entry}")


def primary_comparisons(results: pd.DataFrame, primary: list[dict], examples=None) -> pd.DataFrame:
    """The comparisons a profile names before the study runs (chosen on calibration worlds),
    each a dict of ``arch``, ``task``, ``a`` (the side claimed higher), ``b`` and ``frozen``:
    its 95 % interval and outcome, Holm's correction over the whole primary family, and the
    decision (supported, contradicted, undecided) after it. ``results``: whole and frozen rows
    (``finetune_grid``'s ``frozen`` column)."""
    done, continuous = [], []
    for entry in primary:
        _check_primary(entry)
        c = _within(**entry)
        d = compare(results, c, examples)
        if d is None:
            raise ValueError(f"primary comparison {entry} was not run: the notebook's grid lacks a side")
        done.append({**d, "_metric": "test_score", "_example_set": entry["task"]})
        continuous.append(on_the_continuous_score(results, c, examples, done[-1]))
    adjust(done)                             # Holm over the family: fills "after Holm"
    if all(e is not None for e in continuous):
        adjust(continuous)                   # and over the family on the continuous score
        for d, e in zip(done, continuous):
            d["continuous decision"] = WORDS[e["after Holm"]]
    rows = [{**{k: v for k, v in d.items() if not k.startswith("_")}, "decision": WORDS[d["after Holm"]]}
            for d in done]
    return pd.DataFrame(rows, columns=PRIMARY_COLUMNS)


def sensitivity(results: pd.DataFrame, sets, examples=None) -> pd.DataFrame:
    """Whether the test bed shows pretraining at all: per (arch, task, whole or frozen), does
    some pretraining set of ``sets`` beat direct training, its 95 % interval above 0 after
    Holm over the sets of the cell? Which set wins is an outcome, reported, not a target."""
    rows = []
    for (arch, task, frozen), _ in results.groupby(["arch", "task", "frozen"], sort=False):
        done, names, unjudged = [], [], []
        for s in sets:
            d = compare(results, _within(arch, task, s, "none", bool(frozen)), examples)
            if d is None:
                continue
            if d["blocks"] < 2:             # one block: no interval; Holm runs over the rest
                unjudged.append(source_name(s))
                continue
            done.append({**d, "_metric": "test_score", "_example_set": task})
            names.append(source_name(s))
        if not done:
            continue
        adjust(done)
        best = max(done, key=lambda d: d["difference"])
        shown_by = [n for n, d in zip(names, done) if d["after Holm"] == "holds"]
        rows.append({"model": MODEL_NAMES[arch], "task": TASK_NAMES.get(task, task),
                     "training": "frozen base" if frozen else "whole", "best gain": best["difference"],
                     "low": best["low"], "high": best["high"], "mde": best["mde"], "blocks": best["blocks"],
                     "sets beating direct training (Holm)": ", ".join(shown_by) or "none",
                     "sets at one block (not judged)": ", ".join(unjudged) or "none",
                     "passes": bool(shown_by)})
    return pd.DataFrame(rows)


# --- for reading ----------------------------------------------------------------------------
def readable(df: pd.DataFrame) -> pd.DataFrame:
    """A table for reading: floats to two decimals (p-values to two significant digits: a
    p of 0.0027 is not 0.00), a dash for a missing value, ∞ for inf."""
    out = df.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            form = "{:.2g}" if col == "p" else "{:.2f}"
            out[col] = [("—" if v != v else "∞" if v == math.inf else form.format(v)) for v in out[col]]
    return out.fillna("—")


def shown(df: pd.DataFrame) -> pd.DataFrame:
    """A claims or comparisons table for reading: its columns, two decimals, a dash for what is
    not there."""
    out = df[[c for c in CLAIM_COLUMNS + COMPARISON_COLUMNS if c in df.columns]] if "claim" in df else df
    return readable(out.loc[:, ~out.columns.duplicated()])


def sentences(claims: pd.DataFrame) -> list[str]:
    """One line per claim in plain words: the decision, the comparison that decided it with its
    interval, what this budget could detect, how many comparisons hold, and why."""
    lines = []
    for _, c in claims.iterrows():
        effect = ""
        if c["effect"] == c["effect"]:
            interval = "" if c["low"] != c["low"] else f" [{c['low']:+.2f}, {c['high']:+.2f}]"
            mde = "" if c["mde"] != c["mde"] else f", detectable at this budget from {c['mde']:.2f}"
            effect = f"deciding comparison {c['deciding']}: {c['effect']:+.2f} {c['unit']}{interval}{mde}; "
        lines.append(f"{c['claim']}: {c['decision']} — {effect}{c['holding']} of {c['comparisons']} "
                     f"hold ({c['reason']}).")
    return lines


def say(claims: pd.DataFrame) -> None:
    """Print ``sentences(claims)``: a notebook's "What it says"."""
    for line in sentences(claims):
        print(line)
