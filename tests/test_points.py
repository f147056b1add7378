"""Domain points: pretraining sets between domains, built deterministically into the world."""
import shutil

import numpy as np
import pytest

from vlstudy.data.root import DataRoot
from vlstudy.similarity import dataset_regions, dataset_texts, textual_similarity, visual_similarity
from vlstudy.world import open_world
from vlstudy.world.points import DomainPoint, build_point, domain_grid


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return open_world("smoke", root=tmp_path_factory.mktemp("points"))


def _point(v, t):
    return DomainPoint("cc", "coco", v, "alttext", "vqa", t)


def test_points_share_images_along_the_text_axis_and_differ_in_text(world):
    a = build_point(world, _point(0.5, 0.0))
    store = world.folder / "stores" / "mix1_cc-coco_0.50"
    rendered = (store / "features.npy").stat()
    b = build_point(world, _point(0.5, 1.0))
    assert (store / "features.npy").stat() == rendered      # the images were not drawn again
    ia, ib = world.info(a), world.info(b)
    assert ia.store == ib.store == store.name and ia.task == "pretraining"
    ra, rb = world.records(a, "train"), world.records(b, "train")
    assert [r.image_id for r in ra] == [r.image_id for r in rb]
    assert a not in world.datasets and "coco" in world.datasets   # a world lists its own sets only
    assert all("[SEP]" in r.text for r in rb) and not any("[SEP]" in r.text for r in ra)
    assert sum(ia.sizes.values()) == len(world.store(ia.store)) == 5 * 40   # pretraining pairs


def test_a_point_is_rebuilt_identically(world, tmp_path):
    name = build_point(world, _point(1.0, 0.5))
    before = world.records(name, "train"), np.array(world.store(world.info(name).store).arrays["features"])
    shutil.rmtree(world.folder / "datasets" / name)
    shutil.rmtree(world.folder / "stores" / "mix1_cc-coco_1.00")
    fresh = DataRoot(world.folder)
    assert build_point(fresh, _point(1.0, 0.5)) == name
    assert fresh.records(name, "train") == before[0]
    np.testing.assert_array_equal(fresh.store("mix1_cc-coco_1.00").arrays["features"], before[1])
    assert not list(world.folder.glob(".tmp-*"))            # nothing half-written left behind


def test_measured_similarity_to_the_target_follows_each_axis(world):
    """Moving a point towards VQA-D's images raises only the visual similarity to VQA-D;
    towards its text, only the textual one."""
    target_texts, target_regions = dataset_texts(world, "vqa_d"), dataset_regions(world, "vqa_d")
    measured = {}
    for v, t in [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0)]:
        name = build_point(world, _point(v, t))
        measured[v, t] = (visual_similarity(dataset_regions(world, name), target_regions)["visual"],
                          textual_similarity(world.tokenizer, dataset_texts(world, name), target_texts))
    (v0, t0), (v1, t_same), (v_same, t1) = measured[0, 0], measured[1, 0], measured[0, 1]
    assert v1 > v0 + 0.05 and t1 > t0 + 0.2
    assert v_same == pytest.approx(v0)                       # same images
    assert abs(t_same - t0) < 0.1 < t1 - t0                  # text barely moves with the images


def test_grid_names_and_bad_points(world, tmp_path):
    grid = domain_grid([0.0, 1.0], ("cc", "coco"), ("alttext", "vqa"))
    assert [p.name for p in grid][1] == "mix1_cc-coco_0.00_alttext-vqa_1.00" and len(grid) == 4
    with pytest.raises(ValueError, match="visual_to 'nowhere'"):
        DomainPoint("cc", "nowhere", 0.5, "alttext", "vqa", 0.5)
    with pytest.raises(ValueError, match=r"textual_t must be in \[0, 1\]"):
        _point(0.5, 1.5)
    with pytest.raises(ValueError, match="not a synthetic world"):
        (tmp_path / "datasets").mkdir()
        build_point(DataRoot(tmp_path), _point(0.0, 0.0))
    with pytest.raises(ValueError, match="more than two decimals"):
        _point(0.501, 0.0)                                   # would share 0.50's name


def test_a_failed_build_leaves_nothing_behind(world, monkeypatch):
    import vlstudy.world.points as points
    calls = []

    def broken(*args):
        calls.append(1)
        if len(calls) > 50:
            raise RuntimeError("disk full")
        return "text"
    monkeypatch.setattr(points, "describe", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        build_point(world, _point(0.25, 0.75))
    assert not (world.folder / "datasets" / _point(0.25, 0.75).name).exists()
    assert not (world.folder / "stores" / "mix1_cc-coco_0.25").exists()
    assert not list(world.folder.glob(".tmp-*"))


def test_a_world_folder_must_match_its_spec(world, tmp_path):
    fake = tmp_path / "world-000000000000"
    (fake / "datasets").mkdir(parents=True)
    shutil.copy(world.folder / "spec.json", fake / "spec.json")
    with pytest.raises(ValueError, match=r"describes world-\w+, not the folder world-000000000000"):
        build_point(DataRoot(fake), _point(0.0, 0.0))
