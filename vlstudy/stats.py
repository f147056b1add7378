"""Deciding comparisons between two arms of a study, with the pretraining seed as the unit.

An arm is every run of one configuration (e.g. VisualBERT pretrained on COCO, finetuned on
VQA-D). Its runs fall into *blocks*: one block is one pretraining seed (BERT stage plus
pretraining run), and finetuning seeds are nested inside it. Blocks are what a replication
would redraw, so variances are estimated between blocks, never between runs (runs of one block
share its pretraining draw and are not independent). Every run is also scored on the same test
examples, which are themselves one sample of the task: where per-example scores are at hand,
that third source of variance is added, less the model×example noise the block means already
carry (counted once, not twice). The block and test terms are combined by summing their
squared t margins, which keeps the false-positive rate at its nominal level even at 2 blocks
(one t with Satterthwaite's df does not: about 9 % at a nominal 5 % in our simulations).

Every interval is that of a *contrast*, a weighted sum of arm means: +1/−1 for one
comparison, ±1/C for the mean of C comparisons. Its block term is taken per group of blocks
that the same arms share, so arms that meet in some blocks are paired there.

Two arms are *paired* when they were run on the same blocks (seed k in both): their per-block
differences then cancel whatever seed k shares across arms.

Verdicts decide with :func:`t_interval`; :func:`hierarchical_bootstrap` is reported beside it
(it is too narrow with few blocks). Several comparisons are adjusted with :func:`holm`, or
pooled into one effect with :func:`pooled_interval`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import reduce
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

    def block_examples(self) -> np.ndarray:
        """Per-example score averaged over the runs of each block: (K, n_examples), rows in the
        order of ``block_ids``."""
        if self.examples is None:
            raise ValueError("Arm: this arm has no per-example scores")
        within = np.zeros((len(self._block_ids), len(self.scores)))      # (K, runs)
        within[self._run_block, np.arange(len(self.scores))] = 1.0 / self._runs_per_block[self._run_block]
        return within @ self.examples

    def restricted(self, blocks: np.ndarray) -> "Arm":
        """The arm's runs in ``blocks`` only (all of them among its own)."""
        keep = np.isin(self.blocks, blocks)
        return Arm(self.blocks[keep], self.scores[keep], None if self.examples is None else self.examples[keep])

    def rows_of(self, blocks: np.ndarray) -> np.ndarray:
        """Positions of ``blocks`` (all of them this arm's) in ``block_ids``."""
        return np.searchsorted(self._block_ids, blocks)


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
    own t margin: sqrt(Σ (t_{1−p/2, df_j})² v_j). (A loop: there are only a few terms.) At a p
    near 0 a 1-df quantile squared passes the largest float: the width is then inf."""
    with np.errstate(over="ignore"):
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
# A contrast is a weighted sum of arm means, θ = Σ w·mean(arm): +1/−1 for one comparison, ±1/C
# for the mean of C comparisons. An arm may appear in several entries (comparisons sharing it).
Entries = Sequence[tuple[Arm, float]]


def _block_groups(entries: Entries) -> list[tuple[int, list, np.ndarray]]:
    """The blocks of a contrast grouped by which entries have them: [(blocks in the group,
    its entries, the blocks its variance is taken on)]. θ = Σ_k z_k with z_k = Σ_{entries with
    block k} (w/K_entry)·block mean_k, and blocks are independent draws, so within a group
    the z_k are i.i.d.: their spread is the group's variance, covariances between arms that
    meet in those blocks included. A group of one block has no spread of its own; its z is
    formed instead on every block where all of its arms meet (fewer than 2 where they meet
    only there)."""
    held = [set(arm.block_ids.tolist()) for arm, _ in entries]
    patterns: dict[tuple, list] = {}
    for block in sorted(set().union(*held)):
        members = tuple(i for i, (_, w) in enumerate(entries) if w != 0 and block in held[i])
        if members:
            patterns.setdefault(members, []).append(block)
    groups = []
    for members, blocks in patterns.items():
        arms = [entries[i] for i in members]
        meet = np.array(blocks) if len(blocks) >= 2 else reduce(np.intersect1d, [arm.block_ids for arm, _ in arms])
        groups.append((len(blocks), arms, meet))
    return groups


def _block_term(entries: Entries) -> tuple[float, float]:
    """Variance and df of θ's block-to-block part: per group of n_g blocks, n_g·s²(z) with
    (blocks z is taken on − 1) df; the groups summed with Satterthwaite's df (Welch's, for two
    arms on different blocks; the paired t's K−1 when every arm has the same blocks). Where a
    one-block group's arms meet nowhere else, its variance is bounded from the arms' own,
    (Σ |w|/K·s)², the largest it can be whatever their correlation."""
    variances, dfs = [], []
    for size, arms, meet in _block_groups(entries):
        if len(meet) >= 2:
            z = sum(w / len(arm.block_ids) * arm.block_means[arm.rows_of(meet)] for arm, w in arms)   # (meet,)
            variances.append(size * _sample_variance(z))
            dfs.append(float(len(meet) - 1))
        else:
            variances.append(sum(abs(w) / len(arm.block_ids) * math.sqrt(_sample_variance(arm.block_means))
                                 for arm, w in arms) ** 2)
            dfs.append(float(min(len(arm.block_ids) for arm, _ in arms) - 1))
    return sum(variances), _satterthwaite(variances, dfs, fallback=sum(dfs))


def _residual_mean_square(table: np.ndarray) -> float:
    """MS_E of a two-way table without replication (blocks × examples): what is left of each
    cell after its row and column means, per residual df (rows−1)(columns−1)."""
    rows, columns = table.shape
    residual = table - table.mean(axis=1, keepdims=True) - table.mean(axis=0, keepdims=True) + table.mean()
    return float(np.einsum("ij,ij->", residual, residual)) / ((rows - 1) * (columns - 1))


def _test_term(entries: Entries) -> tuple[float, float, float] | None:
    """Variance and df (n−1) of θ's test-sampling part, for entries on one test set that all
    carry per-example scores, and the model×example noise the block term holds from this set;
    None with fewer than 2 examples.

    The per-example contrast D_i = Σ w·(arm's mean on example i) has var(D)/n = MS_I/(nK) in
    two-way ANOVA terms (paired arms); its expectation holds the model×example noise MS_E/(nK)
    that the block term has already counted (each block mean carries its runs' own test noise).
    So that part is removed, group by group of blocks as in :func:`_block_groups`:
    (MS_I − MS_E)/(nK), unbiased. Where a one-block group's arms meet nowhere else, each arm's
    own MS_E stands in, their example noise taken as independent there. The estimate is
    clipped at 0: a test term below 0 is noise, and the interval is then the block term's."""
    n = entries[0][0].examples.shape[1]
    if n < 2:
        return None
    contrast = sum(w * arm.example_means() for arm, w in entries)                      # (n,)
    counted = 0.0
    for size, arms, meet in _block_groups(entries):
        if len(meet) >= 2:
            table = sum(w / len(arm.block_ids) * arm.block_examples()[arm.rows_of(meet)] for arm, w in arms)
            counted += size * _residual_mean_square(table)                             # table: (meet, n)
        else:
            counted += sum((w / len(arm.block_ids)) ** 2 * _residual_mean_square(arm.block_examples())
                           for arm, w in arms)
    return max(0.0, (_sample_variance(contrast) - counted) / n), float(n - 1), counted / n


def _contrast_evidence(entries: Entries, test_sets: Sequence[Entries]) -> _Evidence:
    """θ = Σ w·mean(arm) with its block term and one test term per test set (``test_sets``: the
    entries of each set whose arms carry per-example scores).

    Arms whose blocks differ but meet in at least 2 blocks are compared on the blocks they all
    have (a per-block contrast where they meet: the paired t, exact; a block one arm lacks
    says nothing about the difference). Arms that meet in fewer are combined group by group
    (:func:`_block_term`). A block term of exactly 0 is taken as the example noise it must
    hold (each block mean carries its runs' own test noise): with few blocks and scores that
    move in steps, two blocks can differ by exactly the same amount, and a zero spread would
    claim certainty. (Raising every smaller block term to that noise would make the rule far
    too conservative: a 1-df variance is usually drawn below its mean.)"""
    weighted = [arm for arm, w in entries if w != 0]
    common = reduce(np.intersect1d, [arm.block_ids for arm in weighted])
    if len(common) >= 2 and not all(is_paired(weighted[0], arm) for arm in weighted):
        kept = {id(arm): arm.restricted(common) for arm, _ in entries}
        entries = [(kept[id(arm)], w) for arm, w in entries]
        test_sets = [[(kept[id(arm)], w) for arm, w in on_one_set] for on_one_set in test_sets]
    difference = float(sum(w * arm.mean for arm, w in entries))
    block_var, block_df = _block_term(entries)
    variances, dfs, noise = [block_var], [block_df], 0.0
    for on_one_set in test_sets:
        term = _test_term(on_one_set) if on_one_set else None
        if term is not None:
            variances.append(term[0])
            dfs.append(term[1])
            noise += term[2]
    if block_var < 1e-9 * noise:      # blocks that differ by exactly the same amount (step-valued scores)
        variances[0] = noise
    first = entries[0][0]
    paired = all(is_paired(first, arm) for arm, w in entries if w != 0)
    blocks = min(len(arm.block_ids) for arm, _ in entries)
    return _Evidence(difference, tuple(variances), tuple(dfs), paired, blocks)


def _evidence(a: Arm, b: Arm, test_sampling: bool) -> _Evidence:
    """The difference of two arms and its variance terms (see :func:`t_interval`)."""
    _check_two_blocks(a, "a")
    _check_two_blocks(b, "b")
    entries = [(a, 1.0), (b, -1.0)]
    return _contrast_evidence(entries, [entries] if test_sampling and _shared_examples(a, b) else [])


def t_interval(a: Arm, b: Arm, level: float = 0.95, test_sampling: bool = True,
               combine: str = "margins") -> Interval:
    """The interval verdicts decide with: a t interval over blocks, plus test-set sampling.

    Blocks (pretraining seeds) are the unit of replication, so the variance comes from how
    block means scatter: runs within a block share their pretraining draw, and counting them
    as independent would overstate the evidence. Paired arms (the same blocks) use the
    per-block differences d_k, var = s²(d)/K with K−1 df; arms on different blocks, Welch on
    the block means with Satterthwaite's df; arms whose blocks partly meet, the per-block
    difference where they meet and each arm's own blocks elsewhere (:func:`_block_term`).

    The test set is one sample of the task's examples, and a difference seen on it may not
    carry to another sample; with ``test_sampling`` and per-example scores in both arms the
    variance of the per-example differences D_i over the n examples is added, less the
    model×example noise that the block means already hold: (MS_I − MS_E)/(nK) with n−1 df,
    clipped at 0 (:func:`_test_term`). Without that subtraction the noise is counted twice
    and a true null is rejected 1–3 % of the time at a nominal 5 %.

    ``combine`` says how the two terms make one interval. "margins" (the default): half-width
    sqrt((t_{K−1}·se_block)² + (t_{n−1}·se_test)²), never above the nominal error rate.
    "satterthwaite": one t with the Welch–Satterthwaite df, (v1+v2)²/(v1²/df1 + v2²/df2); it is
    kept for comparison only, since with 2–3 blocks it rejects a true null up to 2.5× too often
    (see :class:`_Evidence`). With a single term the two agree: the plain t interval.
    """
    _check_level(level)
    return _evidence(a, b, test_sampling).interval(level, combine)


def mean_interval(arm: Arm, level: float = 0.95, test_sampling: bool = True) -> Interval:
    """The interval of one cell's mean, as the figures draw it: blocks plus, with per-example
    scores, the test set's sampling (the same terms as :func:`t_interval`, for the contrast
    "this arm" alone; a cell's level also moves with which examples were drawn, which a paired
    difference cancels)."""
    _check_level(level)
    _check_two_blocks(arm, "arm")
    entries = [(arm, 1.0)]
    return _contrast_evidence(entries, [entries] if test_sampling and arm.examples is not None else []).interval(
        level, "margins")


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
    i.e. both one-sided tests at α reject; ``p``: the larger one-sided p (below α exactly when
    equivalent). ``different``: the (1−α) interval lies entirely outside [−margin, margin];
    ``p_different``: its p (below α exactly when different). Neither: the data cannot tell."""
    _check_alpha(alpha)
    if not (margin > 0 and np.isfinite(margin)):
        raise ValueError(f"margin must be positive and finite, got {margin}")
    evidence = _evidence(a, b, test_sampling)
    narrow, wide = evidence.interval(1 - 2 * alpha, combine), evidence.interval(1 - alpha, combine)
    p = max(evidence.one_sided_p(-margin, above=True, combine=combine),
            evidence.one_sided_p(margin, above=False, combine=combine))
    # "different": beyond +margin or below −margin, each one-sided at α/2 (the (1−α) interval)
    beyond = min(evidence.one_sided_p(margin, above=True, combine=combine),
                 evidence.one_sided_p(-margin, above=False, combine=combine))
    return {"equivalent": bool(narrow.low > -margin and narrow.high < margin),
            "different": bool(wide.low > margin or wide.high < -margin),
            "p": p, "p_different": min(1.0, 2 * beyond),
            "interval": narrow, "interval_wide": wide, "margin": float(margin)}


def not_greater(a: Arm, b: Arm, margin: float, alpha: float = 0.05, test_sampling: bool = True,
                combine: str = "margins") -> dict:
    """"a does not beat b by more than ``margin``" as a one-sided test at α. ``holds``: the
    (1−2α) interval's upper bound is below the margin; ``p``: the one-sided p of "δ ≥ margin"
    (below α exactly when it holds); ``fails``: the (1−α) interval's lower bound is above the
    margin; ``p_fails``: its p (below α exactly when it fails)."""
    _check_alpha(alpha)
    if not np.isfinite(margin):
        raise ValueError(f"margin must be finite, got {margin}")
    evidence = _evidence(a, b, test_sampling)
    narrow, wide = evidence.interval(1 - 2 * alpha, combine), evidence.interval(1 - alpha, combine)
    return {"holds": bool(narrow.high < margin), "fails": bool(wide.low > margin),
            "p": evidence.one_sided_p(margin, above=False, combine=combine),
            "p_fails": min(1.0, 2 * evidence.one_sided_p(margin, above=True, combine=combine)),
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
    """One effect for a claim about an average of several comparisons: the mean of
    sign·(mean a − mean b), each comparison weighted alike.

    ``pairs``: (a, b, sign, example_set); sign (+1 or −1) orients each comparison so that
    positive is the claimed direction, and example_set names its test set (comparisons on one
    task share it, and their example draws are correlated). Comparisons usually share arms and
    blocks, so they are not independent: the pooled difference is a contrast of arm means whose
    block term is taken per block wherever the arms meet (:func:`_block_term`: with every arm
    on the same blocks, the per-block pooled difference with K−1 df), which counts those
    correlations, also between comparisons that share an arm on blocks the others lack. Each
    test set is one test-sampling term (:func:`_test_term`), combined with the block term as in
    :func:`t_interval`.
    """
    _check_level(level)
    if len(pairs) == 0:
        raise ValueError("pooled_interval: no comparisons given")
    for index, pair in enumerate(pairs):
        if len(pair) != 4:
            raise ValueError(f"pooled_interval: comparison {index} is not (a, b, sign, example_set)")
        if pair[2] not in (1, -1):
            raise ValueError(f"pooled_interval: comparison {index} has sign {pair[2]!r}; it must be +1 or -1")
    for index, (a, b, _, _) in enumerate(pairs):
        _check_two_blocks(a, f"a of comparison {index}")
        _check_two_blocks(b, f"b of comparison {index}")
    count = len(pairs)
    entries = [entry for a, b, sign, _ in pairs for entry in ((a, sign / count), (b, -sign / count))]
    test_sets: dict = {}
    for a, b, sign, example_set in pairs:
        if _shared_examples(a, b):
            on_set = test_sets.setdefault(example_set, [])
            if on_set and on_set[0][0].examples.shape[1] != a.examples.shape[1]:
                raise ValueError(f"pooled_interval: comparisons on example set {example_set!r} differ in "
                                 f"test-set size ({on_set[0][0].examples.shape[1]} vs {a.examples.shape[1]})")
            on_set += [(a, sign / count), (b, -sign / count)]
    return _contrast_evidence(entries, list(test_sets.values())).interval(level, combine)
