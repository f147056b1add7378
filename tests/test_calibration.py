"""Calibration and confirmation worlds are kept apart: calibration reads validation splits of
calibration worlds only; the confirmation world is another world of the same generator."""
import ast
import inspect

import pandas as pd
import pytest

from vlstudy import calibration
from vlstudy.registry import Registry
from vlstudy.study import Recipe, Study
from vlstudy.world import world_spec
from vlstudy.world.build import CALIBRATION_SEEDS, CONFIRMATION_SEED, RETIRED_SEEDS

TINY = dict(world="smoke", model="tiny", blocks=2, jobs=1, batch_size=16, finetune_batch_size=16,
            bert_steps=10, pretrain_steps=10, finetune_steps=10, evals_per_run=2)


def test_confirmation_world_is_the_same_generator_at_a_seed_nothing_was_tuned_on():
    assert CONFIRMATION_SEED not in CALIBRATION_SEEDS + RETIRED_SEEDS
    small, confirm = world_spec("small"), world_spec("small", seed=CONFIRMATION_SEED)
    assert small.seed in CALIBRATION_SEEDS and confirm.seed == CONFIRMATION_SEED
    assert {**vars(small), "seed": 0} == {**vars(confirm), "seed": 0} and small.digest() != confirm.digest()
    with pytest.raises(ValueError, match="world seed"):
        world_spec("small", seed=-1)


def test_the_confirmation_world_is_what_the_default_profile_reports_on():
    from vlstudy.runner import load_profile
    assert load_profile("small")["common"]["world_seed"] == CONFIRMATION_SEED


def test_runs_on_another_world_seed_are_other_runs(tmp_path):
    study0, study1 = Study(Recipe(**TINY)), Study(Recipe(**{**TINY, "world_seed": 3}))
    a, b = study0.finetuning("visual_bert", "vqa_d", "coco"), study1.finetuning("visual_bert", "vqa_d", "coco")
    assert a.id != b.id and b.data().folder != a.data().folder
    assert b.data().folder.name == f"world-{world_spec('smoke', seed=3).digest()}"
    with pytest.raises(ValueError, match="prepared data root"):
        from vlstudy.roots import open_data
        open_data(str(tmp_path), 3)


def test_calibration_refuses_the_confirmation_world_before_any_run(tmp_path):
    registry = Registry(tmp_path / "runs")
    with pytest.raises(ValueError, match="confirmation world"):
        calibration.measure(Recipe(**{**TINY, "world_seed": CONFIRMATION_SEED}), "baseline",
                            ["visual_bert"], ["none"], ["vqa_d"], registry=registry)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    with pytest.raises(SystemExit):
        calibration.main(["--world-seed", str(CONFIRMATION_SEED), "--out", str(tmp_path / "out")])
    with pytest.raises(ValueError, match="not a calibration world"):     # a retired confirmation world
        calibration.check_calibration_world(Recipe(**{**TINY, "world_seed": RETIRED_SEEDS[0]}))
    calibration.check_calibration_world(Recipe(**{**TINY, "world_seed": CALIBRATION_SEEDS[1]}))


def test_calibration_keeps_no_test_score(tmp_path):
    table = calibration.measure(Recipe(**TINY), "low_resource", ["visual_bert"], ["none", "coco"], ["vqa_d"],
                                registry=Registry(tmp_path / "runs"))
    assert not [c for c in table.columns if "test" in c]
    assert set(table["pretrained_on"]) == {"none", "coco"} and len(table) == 4
    got = calibration.gains(table)
    assert list(got["pretrained_on"]) == ["coco"] and got["blocks"].tolist() == [2]
    assert got["low"].iloc[0] <= got["gain"].iloc[0] <= got["high"].iloc[0]


def test_calibration_code_never_names_the_test_split():
    """What calibration decides on: metrics and predictions of the validation split only."""
    tree = ast.parse(inspect.getsource(calibration))
    strings = [n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)]
    assert not [s for s in strings if s == "test" or s.startswith("test_")]


def test_stability_levers_separate_finetuning_and_block_noise(tmp_path):
    """With 2 finetuning seeds per block a lever's table gives the finetuning-seed sd, the sd of
    block differences with one finetune per block (√(s²(d̄₂) + σ²_f)), both scores, and what a
    run cost; the adoption rule ranks levers by S²·cost, never by their gains."""
    import math

    import numpy as np
    registry = Registry(tmp_path / "runs")
    tables = [calibration.measure(Recipe(**{**TINY, "evals_per_run": 5}), lever, ["visual_bert"], ["none", "coco"], ["vqa_d"],
                                  registry=registry, finetune_seeds=2) for lever in ("baseline", "average_last_3")]
    table = pd.concat(tables, ignore_index=True)
    assert len(table) == 16 and set(table["finetune_seed"]) == {0, 1} and table["seconds"].gt(0).all()
    assert table["pretrain_seconds"][table["pretrained_on"] == "coco"].gt(0).all()
    scatter = calibration.stability(table)
    row = scatter[scatter["lever"] == "baseline"].iloc[0]
    base = table[table["lever"] == "baseline"]
    cells = {p: g.pivot(index="block", columns="finetune_seed", values="val_score") for p, g in base.groupby("pretrained_on")}
    within = sum(((c.sub(c.mean(axis=1), axis=0)) ** 2).to_numpy().sum() for c in cells.values()) / 4   # 2 cells x 2 blocks x 1 df
    d2 = (cells["coco"].mean(axis=1) - cells["none"].mean(axis=1)).to_numpy()
    assert row["finetuning-seed sd"] == pytest.approx(math.sqrt(within))
    assert row["sd of block differences (1 finetune)"] == pytest.approx(math.sqrt(np.var(d2, ddof=1) + within))
    assert row["gain"] == pytest.approx(d2.mean()) and row["blocks"] == 2
    likelihood = calibration.stability(table, metric="val_log_likelihood")
    assert (likelihood["unit"] == "nats").all() and likelihood["gain"].notna().all()
    chosen = calibration.adoption(scatter)
    assert chosen["adopted"].sum() == 1 and set(chosen["lever"]) == {"baseline", "average_last_3"}
    assert chosen.set_index("lever").loc["baseline", "cost"] == 1.0
    assert "gain" not in chosen.columns
