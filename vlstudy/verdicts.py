"""Our evidence for the paper's claims: our tables beside the paper's, and plain verdicts.

A comparison "A beats B" holds when the mean difference over seeds exceeds twice its
standard error, is reversed when it is below minus twice, and is otherwise within noise.
"About equal" holds when the difference is within twice its standard error or one point.
A claim made of several comparisons is supported when all hold, contradicted when none
holds and some are reversed, partly supported when some hold, and inconclusive otherwise
(always, when a cell has a single seed: there is no spread to judge against).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .paper import claims as paper_claims
from .paper import table as paper_table

MODEL_NAMES = {"visual_bert": "VisualBERT", "vilbert": "ViLBERT"}
SOURCE_NAMES = {"none": "none", "random": "random", "coco": "COCO", "vqa_p": "VQA-P", "cc_small": "CC-small",
                "cc_full": "CC", "ccg": "CCG",
                # beyond §3.4: CC's images captioned by a captioner that saw a COCO subset;
                # Flickr-like (SNLI-VE's) images captioned by the COCO captioner
                "ccg_subset_captioner": "CCG (captioner on a COCO subset)", "flickr_g": "Flickr-G"}
TASK_NAMES = {"vqa_d": "VQA-D", "vizwiz": "VizWiz", "snli_ve": "SNLI-VE", "mmimdb": "MM-IMDB"}
# our (task, metric) → the paper tables' column
PAPER_COLUMNS = {("vqa_d", "test_score"): "vqa_d_acc", ("vizwiz", "test_score"): "vizwiz_acc",
                 ("snli_ve", "test_score"): "snli_ve_acc", ("mmimdb", "test_score"): "mmimdb_micro_f1",
                 ("mmimdb", "test_macro_f1"): "mmimdb_macro_f1"}
EQUAL_TOLERANCE = 1.0   # points
PRETRAINED = ("coco", "vqa_p", "cc_small")   # the paper's Table 1 pretraining sets


def source_name(key: str) -> str:
    """"coco" → "COCO"; a subset "cc_full@0.5" → "CC 50%"; a checkpoint "coco:300" → "COCO 300
    updates"; "vqa_p|frozen" → "VQA-P (frozen base)"."""
    key, frozen, _ = key.partition("|frozen")
    key, _, steps = key.partition(":")
    base, _, fraction = key.partition("@")
    return (SOURCE_NAMES[base] + (f" {100 * float(fraction):g}%" if fraction else "")
            + (f" {steps} updates" if steps else "") + (" (frozen base)" if frozen else ""))


def summarize(results: pd.DataFrame, metric: str = "test_score") -> pd.DataFrame:
    """Mean, sd and count over seeds for each (arch, pretrained_on, task)."""
    g = results.groupby(["arch", "pretrained_on", "task"], sort=False)[metric]
    return g.agg(mean="mean", sd="std", n="count").reset_index()


def beside_paper(results: pd.DataFrame, paper_name: str, paper_sources: dict | None = None) -> pd.DataFrame:
    """Our mean ± sd next to the paper's number for every cell both have. ``paper_sources``:
    our source → the paper table's row to set beside it, where the names differ (Table D.1 has
    one CC row, not Table 1's CC-small: our CC-small stands beside it)."""
    paper = paper_table(paper_name)
    renamed = {SOURCE_NAMES[k]: v for k, v in (paper_sources or {}).items()}
    rows = []
    for (task, metric), column in PAPER_COLUMNS.items():
        if metric not in results or task not in set(results["task"]):
            continue
        for _, r in summarize(results[results["task"] == task], metric).iterrows():
            ours = SOURCE_NAMES[r["pretrained_on"]]
            match = paper[(paper["model"] == MODEL_NAMES[r["arch"]])
                          & (paper["pretrained_on"] == renamed.get(ours, ours))]
            rows.append({"model": MODEL_NAMES[r["arch"]], "pretrained on": SOURCE_NAMES[r["pretrained_on"]],
                         "task": TASK_NAMES[task] + (" macro-F1" if metric == "test_macro_f1" else ""),
                         "ours": f"{r['mean']:.2f} ± {0 if math.isnan(r['sd']) else r['sd']:.2f}",
                         "seeds": int(r["n"]),
                         "paper": float(match[column].iloc[0]) if len(match) else float("nan")})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class Comparison:
    arch: str
    task: str
    a: str                   # pretrained_on of the side claimed higher (or equal)
    b: str
    kind: str = "greater"    # "greater", "equal", or "not_greater" (a does not beat b)
    arch_b: str | None = None  # compare two models instead of two pretraining sets
    metric: str = "test_score"

    def label(self) -> str:
        left = f"{MODEL_NAMES[self.arch]} {source_name(self.a)}"
        right = f"{MODEL_NAMES[self.arch_b or self.arch]} {source_name(self.b)}"
        sign = {"greater": ">", "equal": "≈", "not_greater": "≯"}[self.kind]
        metric = "" if self.metric == "test_score" else f" ({self.metric})"
        return f"{TASK_NAMES[self.task]}{metric}: {left} {sign} {right}"


def _cell(results, arch, source, task, metric):
    sel = results[(results["arch"] == arch) & (results["pretrained_on"] == source) & (results["task"] == task)]
    return sel[metric].astype(float)


def compare(results: pd.DataFrame, c: Comparison) -> dict | None:
    a = _cell(results, c.arch, c.a, c.task, c.metric)
    b = _cell(results, c.arch_b or c.arch, c.b, c.task, c.metric)
    if a.empty or b.empty:
        return None
    diff = a.mean() - b.mean()
    sides = {"comparison": c.label(), "higher side": _mean_sd(a), "other side": _mean_sd(b)}
    if min(len(a), len(b)) < 2:         # no spread to judge a difference against
        return {**sides, "difference": diff, "se": float("nan"), "outcome": "one seed"}
    se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
    if c.kind == "greater":
        outcome = "holds" if diff > 2 * se else "reversed" if diff < -2 * se else "within noise"
    elif c.kind == "not_greater":
        outcome = "holds" if diff <= 2 * se else "fails"
    else:
        outcome = "holds" if abs(diff) <= max(2 * se, EQUAL_TOLERANCE) else "fails"
    return {**sides, "difference": diff, "se": se, "outcome": outcome}


def _mean_sd(values: pd.Series) -> str:
    """"54.40 ± 2.41 (6)": mean ± sd over seeds, and how many."""
    sd = values.std(ddof=1) if len(values) > 1 else float("nan")
    return f"{values.mean():.2f} ± {sd:.2f} ({len(values)})"


def _verdict(outcomes: list[str]) -> str:
    if not outcomes:
        return "not measured"
    if "one seed" in outcomes:
        return "inconclusive (one seed per cell)"
    holds = outcomes.count("holds")
    if holds == len(outcomes):
        return "supported"
    if holds:
        return f"partly supported ({holds}/{len(outcomes)})"
    if "reversed" in outcomes or "fails" in outcomes:
        return "contradicted"
    return "inconclusive (within noise)"


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
    return {**out, **_model_claims(archs, variants=("",))}


def _size_claims(archs, fractions=(0.25, 0.5, 1.0), task="vqa_d") -> dict[str, list[Comparison]]:
    """Fig. 3a: sources are "<dataset>@<fraction>" (same updates) and "cc_full@1" (all of CC)."""
    lo, hi = min(fractions), max(fractions)
    return {
        "C5": [Comparison(m, task, f"{d}@{hi:g}", f"{d}@{lo:g}") for m in archs
               for d in PRETRAINED],
        "C6": [Comparison(m, task, f"{d}@{f:g}", f"cc_small@{f:g}") for m in archs for f in fractions
               for d in ("coco", "vqa_p")],
        "C7": [Comparison(m, task, f"{d}@{hi:g}", "cc_full@1") for m in archs for d in ("coco", "vqa_p")],
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


def _model_claims(archs, sources=("none",) + PRETRAINED,
                  variants=("", "|frozen")) -> dict[str, list[Comparison]]:
    """C21: VisualBERT against ViLBERT in every cell; by default over whole and frozen-base
    results (frozen rows' sources carry "|frozen"), Table 1's over whole results only."""
    if not {"visual_bert", "vilbert"} <= set(archs):
        return {}
    return {"C21": [Comparison("visual_bert", t, s + f, s + f, arch_b="vilbert")
                    for f in variants for t in TASK_NAMES for s in sources]}


def _checkpoint_claims(archs, checkpoints=(), task="vqa_d") -> dict[str, list[Comparison]]:
    """§3.6: ``checkpoints`` are sources ordered from the lowest pretraining validation loss to
    the highest; finetuned, each beats the next (C22); frozen, the order reverses (C23)."""
    pairs = list(zip(checkpoints, checkpoints[1:]))
    return {"C22": [Comparison(m, task, a, b) for m in archs for a, b in pairs],
            "C23": [Comparison(m, task, b + "|frozen", a + "|frozen") for m in archs for a, b in pairs]}


def _synthetic_claims(archs, fractions=(), task="vqa_d") -> dict[str, list[Comparison]]:
    """§3.4 and Table D.1. Sources: "ccg", "cc_small", "coco", "vqa_p" (whole finetuning);
    the size sweep's "ccg@<fraction>" for the ``fractions`` swept."""
    out = {
        "C16": [Comparison(m, task, "ccg", "cc_small") for m in archs],
        "C17": [Comparison(m, task, s, "ccg") for m in archs for s in ("coco", "vqa_p")],
        "C18": [Comparison(m, task, f"ccg@{max(fractions):g}", f"ccg@{min(fractions):g}") for m in archs]
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


def mark_frozen(results: pd.DataFrame) -> pd.DataFrame:
    """Whole and frozen-base rows in one table, frozen sources renamed "<source>|frozen"."""
    out = results.copy()
    out["pretrained_on"] = [p + "|frozen" if f else p for p, f in zip(out["pretrained_on"], out["frozen"])]
    return out


def rankings_differ(results: pd.DataFrame, claim: str, task: str, archs, metric: str = "test_score") -> dict:
    """A claim that two models rank the pretraining sets differently on ``task`` (C13): the
    best set of each model, and whether they differ."""
    best, one_seed = {}, False
    for m in archs:
        cells = results[(results["arch"] == m) & (results["task"] == task)].groupby("pretrained_on")[metric]
        if len(cells):
            best[m] = cells.mean().idxmax()
            one_seed |= bool((cells.count() < 2).any())
    differ = len(set(best.values())) > 1
    verdict = ("not measured" if len(best) < 2 else "inconclusive (one seed per cell)" if one_seed
               else "supported" if differ else "contradicted")
    return _claim_row(claim, int(differ), len(best), verdict + "".join(
        f"; best for {MODEL_NAMES[m]}: {source_name(b)}" for m, b in best.items()))


def evaluate_claims(results: pd.DataFrame, which: str = "table1",
                    archs=("visual_bert", "vilbert"), **options) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(claims with verdicts, every comparison behind them). ``options`` go to the claim set
    (the size claims take the ``fractions`` swept)."""
    if which not in CLAIM_SETS:
        raise ValueError(f"unknown claim set {which!r}; known: {sorted(CLAIM_SETS)}")
    claim_rows, detail_rows = [], []
    for cid, comparisons in CLAIM_SETS[which](archs, **options).items():
        done = [d for d in (compare(results, c) for c in comparisons) if d is not None]
        for d in done:
            detail_rows.append({"claim": cid, **d})
        outcomes = [d["outcome"] for d in done]
        mean_diff = sum(d["difference"] for d in done) / len(done) if done else float("nan")
        claim_rows.append(_claim_row(cid, outcomes.count("holds"), len(done), _verdict(outcomes),
                                     round(mean_diff, 2)))
    return pd.DataFrame(claim_rows), pd.DataFrame(detail_rows)


def _claim_row(claim: str, holding: int, comparisons: int, verdict: str, mean_difference=float("nan")) -> dict:
    text = paper_claims().set_index("id")
    return {"claim": claim, "section": text.loc[claim, "section"], "statement": text.loc[claim, "claim"],
            "comparisons": comparisons, "holding": holding, "mean difference": mean_difference,
            "verdict": verdict}


def pretraining_loss_claims(losses: pd.DataFrame, archs) -> pd.DataFrame:
    """Table B.1's claims on pretraining validation losses (one pretraining run per set, so
    the verdict is on the order alone). ``losses``: arch, sweep, dataset, fraction, mlm_loss.
    C24: same updates, COCO lowest and CC highest; C25: same epochs, more CC lower."""
    rows = []
    checks24, checks25 = [], []
    for m in archs:
        full = losses[(losses["arch"] == m) & (losses["sweep"] == "same updates")
                      & (losses["fraction"] == losses["fraction"].max())].set_index("dataset")["mlm_loss"]
        if {"coco", "cc_small"} <= set(full.index):
            checks24.append(full.idxmin() == "coco" and full.idxmax() == "cc_small")
        cc = losses[(losses["arch"] == m) & (losses["sweep"] == "same epochs")].sort_values("fraction")["mlm_loss"]
        if len(cc) > 1:
            checks25.append(bool((cc.diff().dropna() < 0).all()))
    for claim, checks in (("C24", checks24), ("C25", checks25)):
        verdict = ("not measured" if not checks else "supported" if all(checks) else
                   f"partly supported ({sum(checks)}/{len(checks)})" if any(checks) else "contradicted")
        rows.append(_claim_row(claim, sum(checks), len(checks), verdict + " (one pretraining run per set)"
                               if checks else verdict))
    return pd.DataFrame(rows)
