"""The synthetic world: determinism, sizes and splits, label balance, regions, domains."""
import filecmp
from collections import Counter

import numpy as np
import pytest

from vlstudy.metrics import normalize_answer
from vlstudy.world import (TEXT_DOMAINS, VISUAL_DOMAINS, build_world, interpolate_text,
                           interpolate_visual, world_spec)
from vlstudy.world.ontology import GENRES
from vlstudy.world.visual import Camera


def test_same_seed_same_world(tmp_path):
    spec = world_spec("smoke", coco_images=12, corpus_sentences=100)
    a, b = build_world(spec, tmp_path / "a"), build_world(spec, tmp_path / "b")
    cmp = filecmp.dircmp(a / "datasets", b / "datasets")
    for sub in cmp.subdirs.values():
        assert not sub.diff_files and not sub.left_only and not sub.right_only
    for store in (a / "stores").iterdir():
        for f in store.iterdir():
            assert f.read_bytes() == (b / "stores" / store.name / f.name).read_bytes(), f
    assert (a / "corpus.txt").read_text() == (b / "corpus.txt").read_text()
    other = build_world(world_spec("smoke", coco_images=12, corpus_sentences=100, seed=1), tmp_path / "a")
    assert other != a
    assert (other / "datasets/coco/train.jsonl").read_text() != (a / "datasets/coco/train.jsonl").read_text()


def test_built_world_is_reused(tmp_path):
    spec = world_spec("smoke", coco_images=12, corpus_sentences=100)
    first = build_world(spec, tmp_path)
    stamp = (first / "spec.json").stat().st_mtime_ns
    assert build_world(spec, tmp_path) == first
    assert (first / "spec.json").stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_unknown_preset_and_override():
    with pytest.raises(ValueError, match="unknown world preset"):
        world_spec("huge")
    with pytest.raises(ValueError, match="bad world override"):
        world_spec("smoke", colour_count=3)


def test_sizes_and_splits(smoke_world):
    spec = world_spec("smoke", vizwiz=(400, 50, 50), snli_ve=(300, 30, 30), mmimdb=(400, 50, 50))
    sizes = {n: smoke_world.info(n).sizes for n in smoke_world.datasets}
    pairs = spec.pretraining_pairs
    for name in ("coco", "vqa_p", "cc_small"):
        assert sum(sizes[name].values()) == pairs, name
    assert sum(sizes["cc_full"].values()) == pairs * spec.cc_full_factor
    assert tuple(sizes["vqa_d"].values()) == spec.vqa_d
    assert tuple(sizes["vizwiz"].values()) == spec.vizwiz
    assert tuple(sizes["snli_ve"].values()) == spec.snli_ve
    for name, s in sizes.items():
        assert set(s) == {"train", "val", "test"} and min(s.values()) > 0, name


def test_image_sharing_follows_the_paper(smoke_world):
    ids = lambda n, sp: {r.image_id for r in smoke_world.records(n, sp)}  # noqa: E731
    coco = set().union(*(ids("coco", s) for s in ("train", "val", "test")))
    vqa_p = set().union(*(ids("vqa_p", s) for s in ("train", "val", "test")))
    assert coco == vqa_p                                  # same COCO images, as in the paper
    assert ids("vqa_d", "train") <= ids("coco", "train")  # VQA-D trains on pool images
    for sp in ("val", "test"):                            # and is evaluated on unseen ones
        assert not ids("vqa_d", sp) & coco
    small = {r.id for s in ("train", "val", "test") for r in smoke_world.records("cc_small", s)}
    full = {r.id for s in ("train", "val", "test") for r in smoke_world.records("cc_full", s)}
    assert small < full
    for sp in ("val", "test"):                            # pretraining splits do not share images
        assert not ids("coco", "train") & ids("coco", sp)


def test_vqa_answers_have_realistic_disagreement(smoke_world):
    recs = [r for s in ("train", "val", "test") for r in smoke_world.records("vqa_d", s)]
    assert all(len(r.answers) == 10 for r in recs)
    assert {r.answer_type for r in recs} == {"yes/no", "number", "other"}
    distinct = [len({normalize_answer(a) for a in r.answers}) for r in recs]
    assert 0.2 < np.mean([d > 1 for d in distinct]) < 0.9      # some, not all, disagree
    majority = [Counter(map(normalize_answer, r.answers)).most_common(1)[0][1] for r in recs]
    assert np.mean(majority) > 6                                # but most annotators agree


def test_label_balance(smoke_world):
    viz = smoke_world.records("vizwiz", "train")
    unanswerable = np.mean([r.answer_type == "unanswerable" for r in viz])
    assert 0.15 < unanswerable < 0.40, unanswerable         # VizWiz's ~28 % (a small split)
    for r in viz:                                         # the type follows the majority
        top = Counter(r.answers).most_common(1)[0][1]
        assert (r.answers.count("unanswerable") == top) == (r.answer_type == "unanswerable")
    snli = Counter(r.label for r in smoke_world.records("snli_ve", "train"))
    assert snli[0] == snli[1] == snli[2] == 100                             # balanced by design
    movies = smoke_world.records("mmimdb", "train")
    assert all(1 <= len(r.labels) <= 3 and set(r.labels) <= set(GENRES) for r in movies)
    genre_counts = Counter(g for r in movies for g in r.labels)
    assert genre_counts.most_common(1)[0][0] == "Drama"
    assert smoke_world.info("mmimdb").label_names == list(GENRES)
    qa = [r.text for r in smoke_world.records("vqa_p", "train")]
    assert all(t.count(" [SEP] ") == 1 for t in qa)                         # question [SEP] answer


def test_regions(smoke_world):
    for name in ("coco", "cc", "vizwiz", "flickr", "poster"):
        st = smoke_world.store(name)
        n = np.asarray(st.arrays["num_regions"])
        valid = np.arange(st.max_regions)[None] < n[:, None]
        boxes, feats = np.asarray(st.arrays["boxes"]), np.asarray(st.arrays["features"])
        probs = np.asarray(st.arrays["cls_prob"])
        assert (n >= 1).all() and (n <= st.max_regions).all()
        assert (boxes >= 0).all() and (boxes <= 1).all()
        assert np.allclose(boxes[..., 4], (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1]))
        assert np.allclose(probs.sum(-1), 1, atol=1e-5)
        assert not feats[~valid].any() and not boxes[~valid].any()        # padding is zero
    from vlstudy.describe import detections
    assert detections(smoke_world, "coco")[0].mean() > detections(smoke_world, "cc")[0].mean()


def test_camera_rotation_angle():
    cam = Camera(16, seed=0)
    x = np.random.default_rng(0).normal(size=(100, 16))
    for c in (0.0, 0.3, 0.7, 1.0):
        y = x @ cam.rotation(c).T
        cos = (x * y).sum(1) / np.linalg.norm(x, axis=1) / np.linalg.norm(y, axis=1)
        assert np.allclose(cos, np.cos(c * np.pi / 2), atol=1e-9)
    with pytest.raises(ValueError, match="even"):
        Camera(15, seed=0)


def test_domains_interpolate():
    a, b = VISUAL_DOMAINS["coco"], VISUAL_DOMAINS["cc"]
    assert interpolate_visual(a, b, 0.0).camera == a.camera
    mid = interpolate_visual(a, b, 0.5)
    assert mid.camera == pytest.approx((a.camera + b.camera) / 2)
    assert mid.supercategory_weights == pytest.approx(
        [(x + y) / 2 for x, y in zip(a.supercategory_weights, b.supercategory_weights)])
    t = interpolate_text(TEXT_DOMAINS["captions"], TEXT_DOMAINS["alttext"], 0.25)
    assert dict(t.forms) == pytest.approx({"caption": 0.75, "alttext": 0.25})
    assert t.hypernym_prob == pytest.approx(0.75 * 0.05 + 0.25 * 0.6)
    with pytest.raises(ValueError, match="interpolation weight"):
        interpolate_visual(a, b, 1.5)


def test_vizwiz_unanswerable_share_is_the_real_datasets():
    """About 28 % of VizWiz's questions are unanswerable (Gurari et al. 2018); the world's
    share must be near it, or "unanswerable" alone scores what image understanding should."""
    import random

    from vlstudy.world.text import vizwiz_question
    from vlstudy.world.visual import sample_scenes
    scenes = sample_scenes(VISUAL_DOMAINS["vizwiz"], np.random.default_rng(0), 4000)
    rng = random.Random(0)
    types = Counter(vizwiz_question(s, TEXT_DOMAINS["vizwiz"], rng).answer_type for s in scenes)
    share = types["unanswerable"] / len(scenes)
    assert 0.22 <= share <= 0.34, share
