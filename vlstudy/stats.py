"""Deciding comparisons between two arms of a study, with the pretraining seed as the unit.

An arm is every run of one configuration (e.g. VisualBERT pretrained on COCO, finetuned on
VQA-D). Its runs fall into *blocks*: one block is one pretraining seed (BERT stage plus
pretraining run), and finetuning seeds are nested inside it. Blocks are what a replication
would redraw, so variances are estimated between blocks, never between runs (runs of one block
share its pretraining draw and are not independent). Every run is also scored on the same test
examples, which are themselves one sample of the task: where per-example scores are at hand,
that third source of variance is added. The block and test terms are combined by summing their
squared t margins, which keeps the false-positive rate at or below nominal even at 2 blocks
(one t with Satterthwaite's df does not: about 12 % at a nominal 5 % in our simulations).

Two arms are *paired* when they were run on the same blocks (seed k in both): their per-block
differences then cancel whatever seed k shares across arms.

Verdicts decide with :func:`t_interval`; :func:`hierarchical_bootstrap` is reported beside it
(it is too narrow with few blocks). Several comparisons are adjusted with :func:`holm`, or
pooled into one effect with :func:`pooled_interval`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Hashable, Sequence

import numpy as np
from scipy import optimize, special
from scipy import stats as sps


# --- arms -----------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Arm:
    """The runs of one configuration: which block each came from, its score, and optionally
    its per-example test scores (each row's mean is that run's score; the same example order
    in every arm compared). Arrays are copied and made read-only, so an arm cannot change
    under a result computed from it. Arms compare (and hash) by identity: field-wise ``==``
    on arrays has no single truth value."""
    blocks: np.ndarray                  # (runs,) int: the block (pretraining seed) of each run
    scores: np.ndarray                  # (runs,) float: each run's metric, e.g. accuracy in points
    examples: np.ndarray | None = None  # (runs, n_examples) float: per-example test scores
    # the block layout, worked out once (comparisons are run by the thousand in calibration)
    _block_ids: np.ndarray = field(init=False, repr=False, compare=False)       # (K,) sorted
    _run_block: np.ndarray = field(init=False, repr=False, compare=False)       # (runs,) index into _block_ids
    _runs_per_block: np.ndarray = field(init=False, repr=False, compare=False)  # (K,)
    _run_weights: np.ndarray = field(init=False, repr=False, compare=False)     # (runs,)

    def __post_init__(self):
        blocks = np.array(self.blocks)
        scores = np.array(self.scores, dtype=float)
        if blocks.ndim != 1 or scores.ndim != 1:
            raise ValueError(f"Arm: blocks and scores must be 1-d, got shapes {blocks.shape} and {scores.shape}")
        if len(blocks) != len(scores):
            raise ValueError(f"Arm: blocks and scores differ in length ({len(blocks)} vs {len(scores)})")
        if len(scores) == 0:
            raise ValueError("Arm: needs at least one run")
        if not np.issubdtype(blocks.dtype, np.integer):
            raise ValueError(f"Arm: blocks must be integers (pretraining seeds), got dtype {blocks.dtype}")
        if not np.isfinite(scores).all():
            raise ValueError("Arm: scores must be finite (a NaN or inf score is a failed run to drop first)")
        examples = None
        if self.examples is not None:
            examples = np.array(self.examples, dtype=float)
            if examples.ndim != 2 or examples.shape[0] != len(scores):
                raise ValueError(f"Arm: examples must be 2-d (runs, n_examples) with {len(scores)} rows, "
                                 f"got shape {examples.shape}")
            if examples.shape[1] == 0:
                raise ValueError("Arm: examples has no columns (no test examples)")
            if not np.isfinite(examples).all():
                raise ValueError("Arm: examples must be finite")
            # a unit slip (scores in points, examples in 0..1) would shrink the test variance
            # 10^4-fold without a sound, so the stated contract is checked
            row_means = examples.mean(axis=1)
            gaps = np.abs(row_means - scores)
            if gaps.max() > 1e-6 * (1.0 + np.abs(scores).max()):
                worst = int(np.argmax(gaps))
                raise ValueError(f"Arm: each row of examples must average to its run's score; run {worst} "
                                 f"has mean {row_means[worst]:.6g} but score {scores[worst]:.6g} "
                                 "(same units? same metric?)")
            examples.setflags(write=False)
        blocks.setflags(write=False)
        scores.setflags(write=False)
        object.__setattr__(self, "blocks", blocks)
        object.__setattr__(self, "scores", scores)
        object.__setattr__(self, "examples", examples)
        block_ids, run_block, runs_per_block = np.unique(blocks, return_inverse=True, return_counts=True)
        run_weights = 1.0 / (len(runs_per_block) * runs_per_block[run_block])
        for name, value in (("_block_ids", block_ids), ("_run_block", run_block),
                            ("_runs_per_block", runs_per_block), ("_run_weights", run_weights)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)

    @staticmethod
    def of(blocks, scores, examples=None) -> "Arm":
        """An arm from lists (or anything array-like)."""
        return Arm(np.asarray(blocks), np.asarray(scores, dtype=float),
                   None if examples is None else np.asarray(examples, dtype=float))

    # -- summaries the tests below are built on ------------------------------------------
    @property
    def block_ids(self) -> np.ndarray:
        """The distinct blocks, sorted: (K,)."""
        return self._block_ids

    @property
    def block_means(self) -> np.ndarray:
        """Each block's mean score over its runs, in the order of ``block_ids``: (K,)."""
        return np.bincount(self._run_block, weights=self.scores) / self._runs_per_block

    def run_weights(self) -> np.ndarray:
        """Each run's weight in the arm's mean, 1/(K·runs of its block): (runs,). Blocks weigh
        alike however many finetuning seeds they hold."""
        return self._run_weights

    @property
    def mean(self) -> float:
        """The mean over blocks of the block means."""
        return float(self.run_weights() @ self.scores)

    def example_means(self) -> np.ndarray:
        """Per-example score averaged over runs within each block, then over blocks: (n_examples,)."""
        if self.examples is None:
            raise ValueError("Arm: this arm has no per-example scores")
        return self.run_weights() @ self.examples


@dataclass(frozen=True)
class Interval:
    """The estimated difference mean(a) − mean(b) with its interval and test of zero."""
    difference: float   # mean(a) − mean(b); an arm's mean is the mean over blocks of its block means
    low: float          # the interval at `level`
    high: float
    se: float
    df: float           # degrees of freedom (inf for a bootstrap); where block and test terms are
                        # combined by their margins, the df whose t quantile·se gives this half-width
    p: float            # two-sided p-value of "difference = 0"
    level: float
    paired: bool
    blocks: int         # blocks per arm (for unpaired arms, the smaller count)

    @property
    def width(self) -> float:
        return self.high - self.low

    def excludes(self, value: float = 0.0) -> bool:
        """Whether the interval lies entirely on one side of ``value``."""
        return self.low > value or self.high < value


# --- helpers ----------------------------------------------------------------------------
def _t_quantile(probability: float, df: float) -> float:
    """Student t quantile (scipy.special directly: scipy.stats' per-call overhead is ~50× larger)."""
    return float(special.stdtrit(df, probability))


def _t_upper_tail(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` (inf: the normal)."""
    return float(special.stdtr(df, -t))


def _check_level(level: float, name: str = "level") -> None:
    if not (0.0 < level < 1.0):
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {level}")


def _check_alpha(alpha: float) -> None:
    """One-sided tests at α read the (1−2α) interval, so α must lie below 1/2."""
    if not (0.0 < alpha < 0.5):
        raise ValueError(f"alpha must lie strictly between 0 and 0.5, got {alpha}")


def _check_two_blocks(arm: Arm, name: str) -> int:
    k = len(arm.block_ids)
    if k < 2:
        raise ValueError(f"arm {name} has {k} block(s); a between-block variance needs at least 2 blocks "
                         "(pretraining seeds)")
    return k


def _satterthwaite(variances: Sequence[float], dfs: Sequence[float], fallback: float) -> float:
    """Welch–Satterthwaite df of a sum of variance estimates, (Σv)²/Σ(v²/df). Zero terms carry
    no information about the df and are left out; if all are zero, ``fallback``."""
    terms = [(float(v), float(df)) for v, df in zip(variances, dfs) if v > 0]
    if not terms:
        return float(fallback)
    return sum(v for v, _ in terms) ** 2 / sum(v * v / df for v, df in terms)


def _sample_variance(values: np.ndarray) -> float:
    """s² with n−1 in the denominator (np.var's overhead matters at thousands of calls)."""
    centred = values - values.mean()
    return float(centred @ centred) / (len(values) - 1)


SMALLEST_P = 1e-300   # p-values below this are reported as 0
COMBINE_RULES = ("margins", "satterthwaite")


def _summed_margins(variances: Sequence[float], dfs: Sequence[float], p: float) -> float:
    """Half-width at two-sided level 1−p of a sum of independent variance terms, each given its
    own t margin: sqrt(Σ (t_{1−p/2, df_j})² v_j). (A loop: there are only a few terms.)"""
    return math.sqrt(sum(special.stdtrit(df, p / 2) ** 2 * v for v, df in zip(variances, dfs)))


@dataclass(frozen=True)
class _Evidence:
    """A difference and its variance as a sum of independent estimates (the block term first,
    then test-sampling terms), each with its df: what intervals and p-values are made from.

    How several terms make one interval (``combine``):
    "margins": half-width sqrt(Σ (t_{df_j}·se_j)²). Never above the nominal error rate (given the
    test term is not under-estimated): the rejection probability is convex in the squared
    half-width, so it is at most the weighted mean of each term's own exact rate. It is the
    plain t interval when one term vanishes.
    "satterthwaite": one t with the Welch–Satterthwaite df, (Σv)²/Σ(v²/df). Too liberal with
    few blocks: the 1–2 df block variance is often drawn small, exactly then the df leaps (the
    test term looks dominant), the t quantile falls from 12.7 towards 2 and |d|/se is large; at
    2 blocks it rejects a true null 10–12 % of the time at a nominal 5 %. Kept for comparison.
    """
    difference: float
    variances: tuple    # of float
    dfs: tuple          # of float
    paired: bool
    blocks: int

    def _terms(self, combine: str) -> tuple[list, list]:
        """The non-zero terms, or a single pooled one where they combine into one t."""
        if combine not in COMBINE_RULES:
            raise ValueError(f"combine must be one of {COMBINE_RULES}, got {combine!r}")
        kept = [(float(v), float(df)) for v, df in zip(self.variances, self.dfs) if v > 0]
        if combine == "satterthwaite" or len(kept) <= 1:
            df = _satterthwaite(self.variances, self.dfs, fallback=self.dfs[0])
            return [sum(v for v, _ in kept)], [df]
        return [v for v, _ in kept], [df for _, df in kept]

    def two_sided_p(self, distance: float, combine: str) -> float:
        """The p at which the interval's half-width equals ``distance`` (≥ 0): the two-sided p of
        "the difference lies ``distance`` away"."""
        variances, dfs = self._terms(combine)
        se = math.sqrt(sum(variances))
        if distance == 0:
            return 1.0
        if se == 0:
            return 0.0
        if len(variances) == 1:
            return min(1.0, float(2 * _t_upper_tail(distance / se, dfs[0])))
        # the root lies between the p's of a plain t at the largest and at the smallest df;
        # the half-width falls as p grows
        smallest, largest = sorted(max(2 * _t_upper_tail(distance / se, df), SMALLEST_P)
                                   for df in (min(dfs), max(dfs)))
        try:
            p = math.exp(optimize.brentq(lambda log_p: _summed_margins(variances, dfs, math.exp(log_p)) - distance,
                                         math.log(smallest), math.log(largest), rtol=1e-10))
        except ValueError:   # no sign change: the root sits on an end, up to rounding (one term dominates)
            p = min((smallest, largest), key=lambda end: abs(_summed_margins(variances, dfs, end) - distance))
        return 0.0 if p <= SMALLEST_P else min(p, 1.0)

    def one_sided_p(self, bound: float, above: bool, combine: str) -> float:
        """p of H0 "δ ≤ bound" (above=True: evidence that δ exceeds the bound) or "δ ≥ bound"
        (above=False), consistent with the intervals: below α exactly when the one-sided
        (1−α) bound, the edge of the (1−2α) interval, clears ``bound``."""
        excess = self.difference - bound if above else bound - self.difference
        if sum(self.variances) == 0:
            return 0.0 if excess > 0 else 1.0
        tail = self.two_sided_p(abs(excess), combine) / 2
        return tail if excess > 0 else 1.0 - tail

    def interval(self, level: float, combine: str) -> Interval:
        """The interval at ``level``; ``df`` is the df whose t quantile times se gives its
        half-width (for one term, simply that term's df); a zero se gives a point interval."""
        _check_level(level)
        variances, dfs = self._terms(combine)
        se = math.sqrt(sum(variances))
        if len(variances) == 1:
            half = _t_quantile((1 + level) / 2, dfs[0]) * se
            df = dfs[0]
        else:
            half = _summed_margins(variances, dfs, 1 - level)
            # half/se lies between the t quantiles at the smallest and the largest df
            ratio, low_df, high_df = half / se, min(dfs), max(dfs)
            if ratio >= _t_quantile((1 + level) / 2, low_df):
                df = low_df
            elif ratio <= _t_quantile((1 + level) / 2, high_df):
                df = high_df
            else:
                df = min(max(float(special.stdtridf((1 + level) / 2, ratio)), low_df), high_df)
        d = self.difference
        return Interval(difference=float(d), low=float(d - half), high=float(d + half), se=float(se), df=float(df),
                        p=self.two_sided_p(abs(d), combine), level=float(level), paired=self.paired,
                        blocks=int(self.blocks))


def _shared_examples(a: Arm, b: Arm) -> bool:
    """Whether both arms carry per-example scores (then they must be on the same test set)."""
    if a.examples is None or b.examples is None:
        return False
    if a.examples.shape[1] != b.examples.shape[1]:
        raise ValueError(f"the arms' per-example scores differ in test-set size ({a.examples.shape[1]} vs "
                         f"{b.examples.shape[1]}): not the same test examples; pass test_sampling=False "
                         "or fix the examples")
    return True


def is_paired(a: Arm, b: Arm) -> bool:
    """Arms are paired when they share exactly the same set of blocks."""
    ids_a, ids_b = a.block_ids, b.block_ids
    return len(ids_a) == len(ids_b) and bool((ids_a == ids_b).all())


# --- the decision rule --------------------------------------------------------------------
def _evidence(a: Arm, b: Arm, test_sampling: bool) -> _Evidence:
    """The difference of two arms and its variance terms (see :func:`t_interval`)."""
    k_a, k_b = _check_two_blocks(a, "a"), _check_two_blocks(b, "b")
    difference = a.mean - b.mean
    paired = is_paired(a, b)
    if paired:
        d = a.block_means - b.block_means                     # (K,)
        var_block, df_block = _sample_variance(d) / k_a, float(k_a - 1)
        blocks = k_a
    else:
        v_a = _sample_variance(a.block_means) / k_a
        v_b = _sample_variance(b.block_means) / k_b
        var_block = v_a + v_b
        df_block = _satterthwaite([v_a, v_b], [k_a - 1, k_b - 1], fallback=k_a + k_b - 2)
        blocks = min(k_a, k_b)
    variances, dfs = [var_block], [df_block]
    if test_sampling and _shared_examples(a, b):
        per_example = a.example_means() - b.example_means()  # (n_examples,)
        n = len(per_example)
        if n >= 2:
            variances.append(_sample_variance(per_example) / n)
            dfs.append(float(n - 1))
    return _Evidence(float(difference), tuple(variances), tuple(dfs), paired, blocks)


def t_interval(a: Arm, b: Arm, level: float = 0.95, test_sampling: bool = True,
               combine: str = "margins") -> Interval:
    """The interval verdicts decide with: a t interval over blocks, plus test-set sampling.

    Blocks (pretraining seeds) are the unit of replication, so the variance comes from how
    block means scatter: runs within a block share their pretraining draw, and counting them
    as independent would overstate the evidence. Paired arms (the same blocks) use the
    per-block differences d_k, var = s²(d)/K with K−1 df; otherwise Welch on the block means
    with Satterthwaite's df.

    The test set is one sample of the task's examples, and a difference seen on it may not
    carry to another sample; with ``test_sampling`` and per-example scores in both arms the
    variance of the per-example differences D_i over the n examples, var(D)/n with n−1 df, is
    added. This is slightly conservative: the model×example (Bernoulli) noise that s²(d)
    already holds is counted again in var(D).

    ``combine`` says how the two terms make one interval. "margins" (the default): half-width
    sqrt((t_{K−1}·se_block)² + (t_{n−1}·se_test)²), never above the nominal error rate.
    "satterthwaite": one t with the Welch–Satterthwaite df, (v1+v2)²/(v1²/df1 + v2²/df2); it is
    kept for comparison only, since with 2–3 blocks it rejects a true null up to 2.5× too often
    (see :class:`_Evidence`). With a single term the two agree: the plain t interval.
    """
    _check_level(level)
    return _evidence(a, b, test_sampling).interval(level, combine)


# --- the bootstrap, reported beside it -------------------------------------------------------
def _bootstrap_run_weights(rng: np.random.Generator, arm: Arm, block_draw: np.ndarray) -> np.ndarray:
    """Run weights (n_boot, runs) of a two-level resample: ``block_draw`` (n_boot, K) picks
    blocks (indices into ``arm.block_ids``), and each picked block's runs are redrawn with
    replacement. The weighted sum of scores is the arm's mean on the resampled data."""
    n_boot, k = block_draw.shape
    run_block, runs_per_block = arm._run_block, arm._runs_per_block
    order = np.argsort(run_block, kind="stable")              # runs grouped by block
    starts = np.concatenate([[0], np.cumsum(runs_per_block)[:-1]])
    drawn_runs = runs_per_block[block_draw]                    # (n_boot, K)
    most = int(runs_per_block.max())
    slot = np.floor(rng.random((n_boot, k, most)) * drawn_runs[..., None]).astype(np.int64)
    valid = np.arange(most) < drawn_runs[..., None]            # (n_boot, K, most)
    run = order[starts[block_draw][..., None] + np.minimum(slot, drawn_runs[..., None] - 1)]
    weight = np.broadcast_to(1.0 / (k * drawn_runs[..., None]), run.shape)
    n_runs = len(arm.scores)
    flat = (np.arange(n_boot)[:, None, None] * n_runs + run)[valid]
    return np.bincount(flat, weights=weight[valid], minlength=n_boot * n_runs).reshape(n_boot, n_runs)


def bootstrap_differences(a: Arm, b: Arm, n_boot: int = 2000, seed: int = 0, chunk: int = 256) -> np.ndarray:
    """The replicates δ* (n_boot,) of :func:`hierarchical_bootstrap`, for plots and checks.
    ``chunk`` bounds how many replicates' example draws are held at once (memory)."""
    if int(n_boot) < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}")
    n_boot = int(n_boot)
    k_a, k_b = _check_two_blocks(a, "a"), _check_two_blocks(b, "b")
    rng = np.random.default_rng(seed)
    draw_a = rng.integers(0, k_a, size=(n_boot, k_a))
    draw_b = draw_a if is_paired(a, b) else rng.integers(0, k_b, size=(n_boot, k_b))
    weights_a = _bootstrap_run_weights(rng, a, draw_a)         # (n_boot, runs_a)
    weights_b = _bootstrap_run_weights(rng, b, draw_b)         # (n_boot, runs_b)
    if not _shared_examples(a, b):
        return weights_a @ a.scores - weights_b @ b.scores      # (n_boot,)
    n = a.examples.shape[1]
    replicates = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        picks = rng.integers(0, n, size=(stop - start, n))     # one example draw for both arms
        counts = np.bincount((picks + n * np.arange(stop - start)[:, None]).ravel(),
                             minlength=(stop - start) * n).reshape(stop - start, n).astype(float)   # (chunk, n)
        # each run's mean on each redrawn test set, (chunk, runs). einsum, not @: the product is
        # thin (few runs), and multi-threaded BLAS on it stalls ~100× on a busy machine
        run_means_a = np.einsum("bn,rn->br", counts, a.examples) / n
        run_means_b = np.einsum("bn,rn->br", counts, b.examples) / n
        replicates[start:stop] = (np.einsum("br,br->b", weights_a[start:stop], run_means_a)
                                  - np.einsum("br,br->b", weights_b[start:stop], run_means_b))
    return replicates


def hierarchical_bootstrap(a: Arm, b: Arm, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> Interval:
    """A Multi-Bootstrap interval (after Sellam et al. 2021, "The MultiBERTs"), for reporting.

    Each replicate redraws blocks with replacement (one draw for both arms when paired,
    independent draws otherwise), redraws each drawn block's runs with replacement, and, when
    both arms have per-example scores, redraws the test examples with replacement (one draw for
    both arms: they share the test set); the difference is recomputed as in
    :func:`t_interval`. Percentile interval; se = sd of the replicates; two-sided p = share of
    replicates with |δ* − δ̂| ≥ |δ̂| (at least 1/n_boot); df = inf.

    With few blocks the percentile interval is too narrow: it cannot see beyond the blocks it
    has, and at 2 paired blocks it excludes 0 whenever both blocks agree in sign (half the time
    under no effect). So verdicts decide with :func:`t_interval`, and this is reported beside it.
    """
    _check_level(level)
    replicates = bootstrap_differences(a, b, n_boot=n_boot, seed=seed)
    difference = a.mean - b.mean
    low, high = np.quantile(replicates, [(1 - level) / 2, (1 + level) / 2])
    p = max(float(np.mean(np.abs(replicates - difference) >= abs(difference))), 1.0 / len(replicates))
    return Interval(difference=float(difference), low=float(low), high=float(high),
                    se=float(replicates.std(ddof=1)), df=float("inf"), p=min(p, 1.0), level=float(level),
                    paired=is_paired(a, b), blocks=min(len(a.block_ids), len(b.block_ids)))


# --- planning, equivalence, multiplicity --------------------------------------------------------
def min_detectable_effect(se: float, df: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true difference a two-sided test at ``alpha`` finds with ``power``, given
    the se and df a study will have: (t_{1−α/2,df} + t_{power,df})·se, the textbook
    approximation (it ignores the far tail and the noncentral t's extra spread)."""
    _check_level(alpha, "alpha")
    _check_level(power, "power")
    if not (se >= 0 and np.isfinite(se)):
        raise ValueError(f"se must be finite and non-negative, got {se}")
    if not df > 0:
        raise ValueError(f"df must be positive, got {df}")
    return float((_t_quantile(1 - alpha / 2, df) + _t_quantile(power, df)) * se)


def power_of_blocks(effect: float, sd: float, blocks: int, alpha: float = 0.05) -> float:
    """Power of the paired t-test on ``blocks`` per-block differences of sd ``sd`` to find a true
    ``effect`` on its side at two-sided ``alpha``: exact, from the noncentral t."""
    if blocks < 2:
        return 0.0
    if not sd > 0:
        return 1.0 if effect != 0 else alpha / 2
    df, ncp = blocks - 1, abs(effect) * math.sqrt(blocks) / sd
    return float(sps.nct.sf(_t_quantile(1 - alpha / 2, df), df, ncp))


def blocks_for_power(effect: float, sd: float, power: float = 0.8, alpha: float = 0.05,
                     most: int = 100) -> int | None:
    """The fewest blocks (pretraining seeds) with which a paired comparison finds ``effect``
    with ``power``, its per-block differences having sd ``sd``; None beyond ``most``."""
    _check_level(power, "power")
    for k in range(2, most + 1):
        if power_of_blocks(effect, sd, k, alpha) >= power:
            return k
    return None


def equivalence(a: Arm, b: Arm, margin: float, alpha: float = 0.05, test_sampling: bool = True,
                combine: str = "margins") -> dict:
    """"About equal" as a test (TOST), rather than "no significant difference", which a noisy
    study earns for free. ``equivalent``: the (1−2α) interval lies inside (−margin, margin),
    i.e. both one-sided tests at α reject; ``p``: the larger one-sided p. ``different``: the
    (1−α) interval lies entirely outside [−margin, margin]. Neither: the data cannot tell."""
    _check_alpha(alpha)
    if not (margin > 0 and np.isfinite(margin)):
        raise ValueError(f"margin must be positive and finite, got {margin}")
    evidence = _evidence(a, b, test_sampling)
    narrow, wide = evidence.interval(1 - 2 * alpha, combine), evidence.interval(1 - alpha, combine)
    p = max(evidence.one_sided_p(-margin, above=True, combine=combine),
            evidence.one_sided_p(margin, above=False, combine=combine))
    return {"equivalent": bool(narrow.low > -margin and narrow.high < margin),
            "different": bool(wide.low > margin or wide.high < -margin),
            "p": p, "interval": narrow, "interval_wide": wide, "margin": float(margin)}


def not_greater(a: Arm, b: Arm, margin: float, alpha: float = 0.05, test_sampling: bool = True,
                combine: str = "margins") -> dict:
    """"a does not beat b by more than ``margin``" as a one-sided test at α. ``holds``: the
    (1−2α) interval's upper bound is below the margin; ``p``: the one-sided p of "δ ≥ margin";
    ``fails``: the (1−α) interval's lower bound is above the margin."""
    _check_alpha(alpha)
    if not np.isfinite(margin):
        raise ValueError(f"margin must be finite, got {margin}")
    evidence = _evidence(a, b, test_sampling)
    narrow, wide = evidence.interval(1 - 2 * alpha, combine), evidence.interval(1 - alpha, combine)
    return {"holds": bool(narrow.high < margin), "fails": bool(wide.low > margin),
            "p": evidence.one_sided_p(margin, above=False, combine=combine),
            "interval": narrow, "interval_wide": wide, "margin": float(margin)}


def holm(pvalues) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values, in the input's order: a claim resting on several
    comparisons is otherwise "supported" by chance far more often than α. Step-down: the i-th
    smallest p is multiplied by (m−i+1), then made monotone and clipped at 1."""
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"holm: p-values must be 1-d, got shape {p.shape}")
    if p.size == 0:
        return np.empty(0)
    if np.any(np.isnan(p)):
        raise ValueError("holm: a p-value is NaN")
    if np.any((p < 0) | (p > 1)):
        raise ValueError("holm: p-values must lie in [0, 1]")
    m = p.size
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    adjusted = np.empty(m)
    adjusted[order] = stepped
    return adjusted


# --- pooling several comparisons of one claim ----------------------------------------------
def pooled_interval(pairs: Sequence[tuple[Arm, Arm, int, Hashable]], level: float = 0.95,
                    combine: str = "margins") -> Interval:
    """One effect for a claim made of several comparisons: the mean of sign·(mean a − mean b).

    ``pairs``: (a, b, sign, example_set); sign (+1 or −1) orients each comparison so that
    positive is the claimed direction, and example_set names its test set (comparisons on one
    task share it, and their example draws are correlated). Comparisons usually share arms and
    blocks, so they are not independent: when every arm has the same blocks, the pooled
    difference is formed block by block and its variance taken between blocks (K−1 df), which
    counts those correlations; the test-sampling term sums the signed per-example differences
    within each test set before taking their variance (each test set is one term, with n−1 df,
    combined with the block term as in :func:`t_interval`). When block sets differ, the
    comparisons are *assumed independent*: se² = Σ se_c²/C², one t with the smallest df.
    """
    _check_level(level)
    if len(pairs) == 0:
        raise ValueError("pooled_interval: no comparisons given")
    for index, pair in enumerate(pairs):
        if len(pair) != 4:
            raise ValueError(f"pooled_interval: comparison {index} is not (a, b, sign, example_set)")
        if pair[2] not in (1, -1):
            raise ValueError(f"pooled_interval: comparison {index} has sign {pair[2]!r}; it must be +1 or -1")
    count = len(pairs)
    signs = np.array([float(pair[2]) for pair in pairs])       # (C,)
    for index, (a, b, _, _) in enumerate(pairs):
        _check_two_blocks(a, f"a of comparison {index}")
        _check_two_blocks(b, f"b of comparison {index}")
    difference = float(np.mean([sign * (a.mean - b.mean) for (a, b, _, _), sign in zip(pairs, signs)]))
    first = pairs[0][0]
    shared_blocks = all(is_paired(first, arm) for a, b, _, _ in pairs for arm in (a, b))
    if not shared_blocks:
        singles = [t_interval(a, b, level=level, combine=combine) for a, b, _, _ in pairs]
        variance = sum(single.se ** 2 for single in singles) / count ** 2
        evidence = _Evidence(difference, (variance,), (min(single.df for single in singles),), False,
                             min(single.blocks for single in singles))
        return evidence.interval(level, combine)
    k = len(first.block_ids)
    per_block = np.mean([sign * (a.block_means - b.block_means)
                         for (a, b, _, _), sign in zip(pairs, signs)], axis=0)  # (K,)
    variances, dfs = [_sample_variance(per_block) / k], [float(k - 1)]
    groups: dict = {}
    for (a, b, _, example_set), sign in zip(pairs, signs):
        if _shared_examples(a, b):
            signed = sign * (a.example_means() - b.example_means())  # (n_g,)
            if example_set in groups and len(groups[example_set]) != len(signed):
                raise ValueError(f"pooled_interval: comparisons on example set {example_set!r} differ in "
                                 f"test-set size ({len(groups[example_set])} vs {len(signed)})")
            groups[example_set] = groups.get(example_set, 0) + signed
    for summed in groups.values():
        n = len(summed)
        if n >= 2:
            variances.append(_sample_variance(summed) / n / count ** 2)
            dfs.append(float(n - 1))
    return _Evidence(difference, tuple(variances), tuple(dfs), True, k).interval(level, combine)
