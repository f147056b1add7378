"""Measured domain similarity: identity, symmetry, and monotone as two domains move apart."""
import random

import numpy as np
import pytest

from vlstudy.similarity import js_similarity, similarity_table, textual_similarity, visual_similarity
from vlstudy.world import TEXT_DOMAINS, VISUAL_DOMAINS
from vlstudy.world.text import caption, interpolate_text
from vlstudy.world.visual import Camera, interpolate_visual, sample_scenes

STEPS = (0.0, 0.5, 1.0)


def _regions(domain, n=300, seed=0, dim=16):
    rng = np.random.default_rng(seed)
    out = Camera(dim, seed=0).render(sample_scenes(domain, rng, n), domain, rng, max_regions=8)
    valid = np.arange(8)[None, :] < out["num_regions"][:, None]
    return {"features": out["features"][valid], "cls_prob": out["cls_prob"][valid]}


def _texts(domain, n=300, seed=0):
    rng, trng = np.random.default_rng(seed), random.Random(seed)
    scenes = sample_scenes(VISUAL_DOMAINS["coco"], rng, n)
    return [caption(s, domain, trng) for s in scenes]


def test_js_similarity_bounds():
    assert js_similarity([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert js_similarity([1, 0], [0, 1]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="histograms"):
        js_similarity([0, 0], [1, 1])


def test_visual_similarity_identity_symmetry_and_monotone():
    coco, cc = VISUAL_DOMAINS["coco"], VISUAL_DOMAINS["cc"]
    start = _regions(coco)
    assert visual_similarity(start, start)["visual"] == pytest.approx(1.0)
    other = _regions(cc, seed=1)
    ab, ba = visual_similarity(start, other), visual_similarity(other, start)
    assert ab == pytest.approx(ba)
    # a fresh sample of the same domain is close; moving towards CC, similarity falls
    curve = [visual_similarity(start, _regions(interpolate_visual(coco, cc, t), seed=2))["visual"] for t in STEPS]
    assert curve[0] > 0.9 and curve[0] > curve[1] > curve[2]


def test_textual_similarity_identity_symmetry_and_monotone(smoke_world):
    tok = smoke_world.tokenizer
    captions, alttext = TEXT_DOMAINS["captions"], TEXT_DOMAINS["alttext"]
    start = _texts(captions)
    assert textual_similarity(tok, start, start) == pytest.approx(1.0)
    other = _texts(alttext, seed=1)
    assert textual_similarity(tok, start, other) == pytest.approx(textual_similarity(tok, other, start))
    curve = [textual_similarity(tok, start, _texts(interpolate_text(captions, alttext, t), seed=2)) for t in STEPS]
    assert curve[0] > curve[1] > curve[2]


def test_similarity_table_on_a_data_root(smoke_world):
    table = similarity_table(smoke_world, ["coco", "cc_small"], ["coco", "vqa_d"], sample=50)
    assert len(table) == 4 and table[["textual", "visual"]].stack().between(0, 1).all()
    same = table[(table["source"] == "coco") & (table["target"] == "coco")].iloc[0]
    assert same["textual"] == pytest.approx(1.0) and same["visual"] == pytest.approx(1.0)
    # COCO's captions are nearer COCO than CC's alt-text is, in both words and images
    coco_row = table.set_index(["source", "target"])
    assert coco_row.loc[("cc_small", "coco"), "textual"] < 1 and coco_row.loc[("cc_small", "coco"), "visual"] < 1
