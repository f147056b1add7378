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
    if changes.get("finetune_steps") == "2x":
        steps = base.finetune_steps
        changes["finetune_steps"] = ({t: 2 * n for t, n in steps.items()} if isinstance(steps, dict)
                                     else 2 * int(steps))
    recipe = dataclasses.replace(base, **changes)
    check_calibration_world(recipe)
    return recipe, fraction


def measure(base: Recipe, lever: str, archs, pretrained_on, tasks, frozen=(False,),
            registry: Registry | None = None) -> pd.DataFrame:
    """Validation scores of a lever's grid: one row per (arch, init, task, frozen, block).
    Test metrics are dropped: calibration decides on validation splits only."""
    recipe, fraction = lever_recipe(base, lever)
    study = Study(recipe, registry, log=_without_test_scores)
    keys = [(a, p, t, f, b) for a in archs for p in pretrained_on for t in tasks for f in frozen
            for b in study.blocks]
    specs = []
    for a, p, t, f, b in keys:
        spec = study.finetuning(a, t, p, b, frozen=f)
        specs.append(spec if fraction == 1 else spec.replace(train_fraction=fraction))
    try:
        finished = study.run_many(specs)
    finally:
        study.close()
    rows = []
    for (a, p, t, f, b), spec, m in zip(keys, specs, finished):
        val = study.registry.predictions(spec, "val")
        rows.append({"lever": lever, "arch": a, "pretrained_on": p, "task": t, "frozen": f, "block": b,
                     "run": spec.id, "val_score": m["val_score"],
                     "_val_examples": val["score"].to_numpy(float) * 100 if "score" in val else None})
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--levers", nargs="+", default=list(LEVERS))
    ap.add_argument("--archs", nargs="+", default=["visual_bert"])
    ap.add_argument("--sets", nargs="+", default=[NO_PRETRAINING, "coco", "cc_small"])
    ap.add_argument("--tasks", nargs="+", default=["vqa_d", "vizwiz"])
    ap.add_argument("--blocks", type=int, default=3)
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
        tables.append(measure(base, lever, args.archs, args.sets, args.tasks, LEVERS[lever].frozen))
        table = pd.concat(tables, ignore_index=True)
        table.drop(columns="_val_examples").to_csv(args.out / "val_scores.csv", index=False)
        result = gains(table)
        result.to_csv(args.out / "gains.csv", index=False)
        print(result.round(2).to_string(index=False), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
