"""Calibration: a world knob or recipe lever measured on validation scores of calibration worlds.

Every choice of world or recipe is made here, on validation splits, so that the confirmation
world (``world.CONFIRMATION_SEED``), on which the report's verdicts are computed, stays one
that nothing was tuned on: this module refuses it, and what it returns holds no test score.

A lever is a set of Recipe changes (plus, for finetuning, the share of the task's training
split, the low-resource lever). Its effect is read as the pretraining gain it leaves: a
pretraining set's validation score minus direct training's, per block (pretraining seed),
with the study's t-interval on blocks plus validation sampling (``stats.t_interval``).

    .venv/bin/python -m vlstudy.calibration     # docs/evidence.md's levers → outputs/calibration/
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import stats
from .registry import Registry
from .sources import NO_PRETRAINING
from .study import Recipe, Study
from .world.build import CALIBRATION_SEEDS, seed_role


@dataclass(frozen=True)
class Lever:
    """A candidate cause of pretraining washing out, and the change that tests it."""
    why: str                       # the property of the real data or the paper's setup behind it
    changes: dict                  # Recipe fields ("finetune_steps": "2x" doubles each task's)
    fraction: float = 1.0          # share of each task's training split (same updates)
    frozen: tuple = (False,)       # the trainings it applies to: whole model, frozen base


LEVERS: dict[str, Lever] = {
    "baseline": Lever("the recipe as the profile sets it", {}, frozen=(False, True)),
    "finetune_lr_low": Lever("a pretrained start may be overwritten at 1e-3: the paper finetunes at its "
                             "pretraining rate, ours at half of it; try a third of that", {"finetune_lr": 3e-4}),
    "finetune_updates_2x": Lever("direct training may catch up given updates: twice the finetuning updates",
                                 {"finetune_steps": "2x"}),
    "low_resource": Lever("pretraining pays where downstream data is scarce (VizWiz ~20k vs VQA 443k "
                          "questions): a third of each task's training split, same updates", {}, 1 / 3),
    "frozen_lr_high": Lever("with the base frozen only the head learns, as a linear probe does, whose rate "
                            "is usually well above finetuning's; VizWiz's frozen heads sat at the majority "
                            "answer: 1e-2 instead of 2e-3", {"frozen_lr": 1e-2}, frozen=(True,)),
    # Whole-model finetuning's stability (stop 32): each measured with 2 finetuning seeds per block
    "average_last_3": Lever("the best of 5 validation checkpoints adds selection noise, and one set of weights "
                            "carries its last updates' noise: the mean of the last 3 checkpoints' weights "
                            "(LAWA, Kaddour 2022; Sanyal et al. 2023), scored once at the end",
                            {"finetune_average_last": 3}),
    "lr_low_3x": Lever("a small rate with many more updates removes failed runs (Mosbach et al. 2021: BERT's "
                       "sd over seeds 7.2 -> 2.4 on RTE); 3e-4 for 3x the updates, so that every run is well past "
                       "the point where VQA-D's models start to use the image (~500 updates)",
                       {"finetune_lr": 3e-4, "finetune_steps": "3x"}),
    "lr_low_3x_average_last_3": Lever("both of the above", {"finetune_lr": 3e-4, "finetune_steps": "3x",
                                                            "finetune_average_last": 3}),
    "base_lr_0.3": Lever("the gradients of a freshly initialised head may overwrite the pretrained base: the "
                         "base at 0.3 of the rate, the head at the rate", {"finetune_base_lr_scale": 0.3}),
    # Round 2 (stop 33): LP-FT, the head first trained on the frozen base
    "probe_head": Lever("a freshly initialised head's first gradients distort the pretrained features, and what "
                        "survives depends on the seed (Kumar et al. 2022): the head starts from the frozen-base "
                        "run's (a linear probe), then the whole model finetunes as the baseline does",
                        {"finetune_head_from_probe": True}),
    "probe_head_lr_low": Lever("LP-FT's own setting: from the probe's head, the whole model at 3e-4 (the head "
                               "needs no high rate to catch up, and a lower one moves the base less), same updates",
                               {"finetune_head_from_probe": True, "finetune_lr": 3e-4}),
    "pretrain_2500": Lever("pretraining stopped at 1,000 updates ends near where grounding emerges, so blocks "
                           "differ in how far each got: 2,500 updates", {"pretrain_steps": 2500}),
}


def check_calibration_world(recipe: Recipe) -> None:
    """Calibration reads only calibration worlds: the confirmation world stays untouched."""
    role = seed_role(recipe.world_seed)
    if role != "calibration":
        role = "the confirmation world" if role == "confirmation" else "not a calibration world"
        raise ValueError(f"world seed {recipe.world_seed} is {role}: calibration (choosing world "
                         f"knobs or recipe settings) reads only the calibration worlds "
                         f"(world.CALIBRATION_SEEDS = {CALIBRATION_SEEDS})")


def lever_recipe(base: Recipe, lever: str) -> tuple[Recipe, float]:
    if lever not in LEVERS:
        raise ValueError(f"unknown lever {lever!r}; known: {sorted(LEVERS)}")
    changes, fraction = dict(LEVERS[lever].changes), LEVERS[lever].fraction
    times = changes.get("finetune_steps")
    if isinstance(times, str):                  # "3x": each task's updates, 3 times
        k, steps = int(times.rstrip("x")), base.finetune_steps
        changes["finetune_steps"] = ({t: k * n for t, n in steps.items()} if isinstance(steps, dict)
                                     else k * int(steps))
    recipe = dataclasses.replace(base, **changes)
    check_calibration_world(recipe)
    return recipe, fraction


def measure(base: Recipe, lever: str, archs, pretrained_on, tasks, frozen=(False,),
            registry: Registry | None = None, finetune_seeds: int = 1) -> pd.DataFrame:
    """Validation scores of a lever's grid: one row per (arch, init, task, frozen, block,
    finetuning seed), with the continuous score beside accuracy and what each run cost (its
    wall seconds, and its pretraining run's). Test metrics are dropped: calibration decides on
    validation splits only."""
    recipe, fraction = lever_recipe(base, lever)
    study = Study(recipe, registry, log=_without_test_scores)
    keys = [(a, p, t, f, b, j) for a in archs for p in pretrained_on for t in tasks for f in frozen
            for b in study.blocks for j in range(finetune_seeds)]
    specs = []
    for a, p, t, f, b, j in keys:
        spec = study.finetuning(a, t, p, b, j, frozen=f)
        if fraction != 1 and spec.head_from is not None:
            raise ValueError(f"lever {lever!r}: a share of the training split and a probe's head together are "
                             "not measured (the probe would have seen the whole split)")
        specs.append(spec if fraction == 1 else spec.replace(train_fraction=fraction))
    try:
        finished = study.run_many(specs)
    finally:
        study.close()
    rows = []
    for (a, p, t, f, b, j), spec, m in zip(keys, specs, finished):
        val = study.registry.predictions(spec, "val")
        parent = study.registry.metrics(spec.parent) if spec.init == "pretrained" else None
        rows.append({"lever": lever, "world_seed": recipe.world_seed or 0, "arch": a, "pretrained_on": p, "task": t,
                     "frozen": f, "block": b, "finetune_seed": j, "run": spec.id, "val_score": m["val_score"],
                     "val_log_likelihood": m.get("val_log_likelihood"), "seconds": m.get("wall_seconds"),
                     "pretrain_seconds": parent.get("wall_seconds") if parent else None,
                     # the frozen-base run whose head it starts from (LP-FT), a cost of the run
                     "probe_seconds": (study.registry.metrics(spec.head_from)["wall_seconds"]
                                       if spec.head_from else 0.0),
                     "_val_examples": val["score"].to_numpy(float) * 100 if "score" in val else None,
                     "_val_log_likelihood_examples": (val["log_likelihood"].to_numpy(float)
                                                      if "log_likelihood" in val else None)})
    return pd.DataFrame(rows)


def _without_test_scores(line: str) -> None:
    """The study's run log, less the test score it prints for finetuning runs."""
    print(re.sub(r",? ?test_score [^,]*", "", line), file=sys.stderr, flush=True)


def gains(table: pd.DataFrame) -> pd.DataFrame:
    """Each pretraining set's validation gain over direct training, per lever and cell: the
    mean of per-block differences and its 95 % interval (blocks plus validation sampling)."""
    rows = []
    for (lever, arch, task, frozen), cell in table.groupby(["lever", "arch", "task", "frozen"], sort=False):
        arms = {p: stats.Arm(g["block"].to_numpy(), g["val_score"].to_numpy(),
                             None if g["_val_examples"].isna().any() else list(g["_val_examples"]))
                for p, g in cell.groupby("pretrained_on", sort=False)}
        if NO_PRETRAINING not in arms:
            continue
        for p, arm in arms.items():
            if p == NO_PRETRAINING:
                continue
            direct = arms[NO_PRETRAINING]
            iv = stats.t_interval(arm, direct)
            shared = np.intersect1d(arm.block_ids, direct.block_ids)
            per_block = (arm.block_means[np.isin(arm.block_ids, shared)]
                         - direct.block_means[np.isin(direct.block_ids, shared)])
            sd = float(per_block.std(ddof=1)) if len(per_block) > 1 else float("nan")
            rows.append({"lever": lever, "arch": arch, "task": task, "frozen": frozen, "pretrained_on": p,
                         "direct": direct.mean, "pretrained": arm.mean,
                         "gain": iv.difference, "low": iv.low, "high": iv.high,
                         "blocks": len(shared), "sd of block differences": sd,
                         # the blocks a paired comparison needs to find this gain 80 % of the time
                         # (none for a gain at or below 0: there is nothing on the claimed side)
                         "blocks for 80 % power": (stats.blocks_for_power(iv.difference, sd)
                                                   if sd == sd and iv.difference > 0 else None)})
    return pd.DataFrame(rows)


METRICS = {"val_score": ("_val_examples", "points"), "val_log_likelihood": ("_val_log_likelihood_examples", "nats")}


def stability(table: pd.DataFrame, pretrained: str = "coco", metric: str = "val_score",
              reference: str = NO_PRETRAINING) -> pd.DataFrame:
    """How much a lever's whole-model runs scatter, per (lever, world, arch, task, frozen):
    ``finetuning-seed sd``, the sd of one run's score between finetuning seeds of a block (pooled
    over both cells, within blocks); the sd of the paired block differences (``pretrained`` −
    direct training) with *one* finetune per block, the study's design, estimated as
    √(s²(d̄₂) + σ²_f) from the blocks' 2-seed mean differences d̄₂ (whose variance holds the
    finetuning variance once; one finetune per arm holds it twice); the same for the 2-seed
    means; the gain over direct training (or over ``reference``, another set) with its 95 %
    interval; and the median wall seconds of one finetuning run and of one pretraining run.
    Needs 2 finetuning seeds per block."""
    examples_column, unit = METRICS[metric]
    rows = []
    for key, cell in table.groupby(["lever", "world_seed", "arch", "task", "frozen"], sort=False):
        arms = {p: g for p, g in cell.groupby("pretrained_on") if p in (reference, pretrained)}
        if len(arms) < 2 or cell["finetune_seed"].nunique() < 2:
            continue
        per_block = {p: g.groupby("block")[metric] for p, g in arms.items()}
        within_ss = sum(float(((g[metric] - per_block[p].transform("mean")) ** 2).sum()) for p, g in arms.items())
        within_df = sum(int((per_block[p].size() - 1).sum()) for p in arms)
        finetuning_var = within_ss / within_df
        means = {p: per_block[p].mean() for p in arms}
        shared = means[pretrained].index.intersection(means[reference].index)
        d2 = (means[pretrained][shared] - means[reference][shared]).to_numpy(float)
        paired = [stats.Arm(g["block"].to_numpy(), g[metric].to_numpy(float),
                            None if g[examples_column].isna().any() else list(g[examples_column]))
                  for g in (arms[pretrained], arms[reference])]
        iv = stats.t_interval(*paired)
        one_run = math.sqrt(float(np.var(d2, ddof=1)) + finetuning_var)
        rows.append({**dict(zip(["lever", "world_seed", "arch", "task", "frozen"], key)), "metric": metric,
                     "pretrained_on": pretrained, "against": reference,
                     "unit": unit, "blocks": len(shared), "finetuning-seed sd": math.sqrt(finetuning_var),
                     "sd of block differences (1 finetune)": one_run,
                     "sd of block differences (mean of 2)": float(np.std(d2, ddof=1)),
                     "gain": iv.difference, "low": iv.low, "high": iv.high, "gain / sd (1 finetune)": iv.difference / one_run,
                     "finetune s": float(cell["seconds"].median()),
                     "probe s": float(cell["probe_seconds"].median()) if "probe_seconds" in cell else 0.0,
                     "pretrain s": float(arms[pretrained]["pretrain_seconds"].median())})
    return pd.DataFrame(rows)


def adoption(table: pd.DataFrame, baseline: str = "baseline", guard: float = 0.5,
             finetunes: tuple = (1, 2, 3)) -> pd.DataFrame:
    """The adoption rule of docs/evidence.md (round 2, written before its candidates ran), on
    ``stability(..., metric="val_score")`` rows of whole-model finetuning. Per lever, cell and
    k finetunes per arm and block: S_k² = τ̂² + 2σ̂²_f / k, with σ̂²_f the finetuning-seed variance
    and τ̂² = max(0, s²(d̄₂) − σ̂²_f) the block term; c_k = the cost of one block of the primary
    family (2 pretraining runs, on each task 3k finetuning runs with their probes) relative to
    the baseline's at k = 1. The (lever, k) with the lowest mean S_k² · c_k over the cells is
    adopted if below ``guard`` × the baseline's at k = 1; else the baseline at k = 1 stays. A
    comparison's blocks for a given power grow with S², each costing c: S²·c is its budget.
    The gains play no part."""
    whole = table[~table["frozen"].astype(bool) & (table["metric"] == "val_score")]
    rows = []
    for lever, cell in whole.groupby("lever", sort=False):
        finetuning_var = cell["finetuning-seed sd"].to_numpy(float) ** 2
        block_var = np.clip(cell["sd of block differences (mean of 2)"].to_numpy(float) ** 2 - finetuning_var, 0, None)
        per_task = cell.groupby("task")
        run_s = (per_task["finetune s"].median() + per_task["probe s"].median()).sum()
        for k in finetunes:
            rows.append({"lever": lever, "finetunes per block": k, "cells": len(cell),
                         "S": math.sqrt(float(np.mean(block_var + 2 * finetuning_var / k))),
                         "finetuning-seed sd (rms)": math.sqrt(float(finetuning_var.mean())),
                         "block term (rms)": math.sqrt(float(block_var.mean())),
                         "block cost s": 2 * cell["pretrain s"].median() + 3 * k * run_s})
    out = pd.DataFrame(rows)
    if baseline not in set(out["lever"]):
        raise ValueError(f"adoption needs the {baseline!r} lever measured beside the others")
    base = out[(out["lever"] == baseline) & (out["finetunes per block"] == 1)].iloc[0]
    out["cost"] = out["block cost s"] / base["block cost s"]
    out["S² · cost"] = out["S"] ** 2 * out["cost"]
    best = out.loc[out["S² · cost"].idxmin()]
    chosen = best.name if best["S² · cost"] < guard * base["S"] ** 2 else base.name
    out["adopted"] = out.index == chosen
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levers", nargs="+", default=list(LEVERS))
    ap.add_argument("--archs", nargs="+", default=["visual_bert"])
    ap.add_argument("--sets", nargs="+", default=[NO_PRETRAINING, "coco", "cc_small"])
    ap.add_argument("--tasks", nargs="+", default=["vqa_d", "vizwiz"])
    ap.add_argument("--blocks", type=int, default=3)
    ap.add_argument("--finetune-seeds", type=int, default=1, help="finetuning runs per block (2: stability)")
    ap.add_argument("--world", default="small", help="world preset")
    ap.add_argument("--world-seed", type=int, default=None, help="a calibration world's seed (default: 0)")
    ap.add_argument("--model", default="small", help="model config preset")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None, help="default: outputs/calibration")
    args = ap.parse_args(argv)
    base = Recipe(world=args.world, world_seed=args.world_seed, model=args.model, blocks=args.blocks,
                  jobs=args.jobs)
    try:
        check_calibration_world(base)
    except ValueError as e:
        ap.error(str(e))
    from .paths import outputs_root
    args.out = args.out or outputs_root() / "calibration"
    args.out.mkdir(parents=True, exist_ok=True)
    tables = []
    for lever in args.levers:
        tables.append(measure(base, lever, args.archs, args.sets, args.tasks, LEVERS[lever].frozen,
                              finetune_seeds=args.finetune_seeds))
        table = pd.concat(tables, ignore_index=True)
        table.drop(columns=[c for c in table.columns if c.startswith("_")]).to_csv(args.out / "val_scores.csv",
                                                                                   index=False)
        result = gains(table)
        result.to_csv(args.out / "gains.csv", index=False)
        print(result.round(2).to_string(index=False), file=sys.stderr, flush=True)
        if args.finetune_seeds > 1:
            scatter = pd.concat([stability(table, metric=m) for m in METRICS], ignore_index=True)
            scatter.to_csv(args.out / "stability.csv", index=False)
            print(scatter.round(3).to_string(index=False), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
