"""The data layer: records, feature stores, tokenizer, answers, batching and masking."""
import json
import os

import numpy as np
import pytest
import torch

from vlstudy.data.answers import AnswerVocab
from vlstudy.data.batching import VLCollator, mask_regions, mask_tokens
from vlstudy.data.features import FeatureStore, write_store
from vlstudy.data.records import Record, read_records, write_records
from vlstudy.data.tokenizer import load_tokenizer


def test_records_round_trip(tmp_path):
    recs = {"train": [Record("a", "img1", "what is it?", answers=("x",) * 10, answer_type="other"),
                      Record("b", "img2", "a dog", labels=("Drama", "Comedy"))],
            "val": [Record("c", "img1", "there is a dog", label=2)]}
    write_records(tmp_path / "toy", recs, task="vqa", store="s", label_names=["x"])
    assert read_records(tmp_path / "toy" / "train.jsonl") == recs["train"]
    assert read_records(tmp_path / "toy" / "val.jsonl") == recs["val"]


@pytest.mark.parametrize("line,message", [
    ('{"id": "a", "image_id": "i"', "toy.jsonl:2: malformed JSON"),
    ('{"id": "a", "text": "t"}', "toy.jsonl:2: record is missing field(s) ['image_id']"),
    ('{"id": "a", "image_id": "i", "text": "t", "colour": 1}', "toy.jsonl:2: unknown field(s) ['colour']"),
    ('[1, 2]', "toy.jsonl:2: expected a JSON object"),
])
def test_records_bad_lines_are_named(tmp_path, line, message):
    path = tmp_path / "toy.jsonl"
    path.write_text('{"id": "ok", "image_id": "i", "text": "t"}\n' + line + "\n")
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]")):
        read_records(path)


def test_duplicate_record_ids_rejected(tmp_path):
    with pytest.raises(ValueError, match="not unique"):
        write_records(tmp_path / "d", {"train": [Record("a", "i", "t")] * 2}, task="pretraining", store="s")


def make_store(path, n=5, r=4, d=6, c=3, seed=0):
    rng = np.random.default_rng(seed)
    arrays = dict(features=rng.normal(size=(n, r, d)), boxes=rng.random((n, r, 5)),
                  cls_prob=rng.dirichlet(np.ones(c), size=(n, r)), num_regions=rng.integers(1, r + 1, n))
    write_store(path, [f"img{i}" for i in range(n)], **arrays)
    return arrays


def test_feature_store(tmp_path):
    arrays = make_store(tmp_path / "s")
    st = FeatureStore(tmp_path / "s")
    assert (st.num_images, st.max_regions, st.dim, st.num_classes) == (5, 4, 6, 3)
    rows = st.index_of(["img3", "img0", "img3"])
    got = st.gather(rows)
    for name in ("features", "boxes", "cls_prob", "num_regions"):
        np.testing.assert_allclose(got[name], arrays[name][[3, 0, 3]], rtol=1e-6)
    with pytest.raises(KeyError, match="image 'img9' has no features in store"):
        st.index_of(["img1", "img9"], where="vqa_d/train.jsonl")
    assert isinstance(st.arrays["features"], np.memmap)


def test_a_store_written_over_another_keeps_the_old_one_until_the_new_is_in(tmp_path, monkeypatch):
    """The new store is swapped in, not written after deleting the old: a swap that fails at
    the last rename leaves the old store whole, and one that succeeds leaves nothing aside."""
    from pathlib import Path
    old = make_store(tmp_path / "s", seed=0)
    rename = Path.rename

    def failing_rename(self, target):
        if ".tmp" in self.name:
            raise OSError("disk full (simulated)")
        return rename(self, target)
    monkeypatch.setattr(Path, "rename", failing_rename)
    with pytest.raises(OSError, match="simulated"):
        make_store(tmp_path / "s", seed=1)
    assert [p.name for p in tmp_path.iterdir()] == ["s"]
    np.testing.assert_allclose(FeatureStore(tmp_path / "s").gather([0])["features"], old["features"][[0]], rtol=1e-6)
    monkeypatch.setattr(Path, "rename", rename)
    new = make_store(tmp_path / "s", seed=1)
    np.testing.assert_allclose(FeatureStore(tmp_path / "s").gather([0])["features"], new["features"][[0]], rtol=1e-6)
    assert [p.name for p in tmp_path.iterdir()] == ["s"]          # no temporary or old folder left


def test_feature_store_bad_shapes(tmp_path):
    n, r = 3, 2
    with pytest.raises(ValueError, match=r"boxes has shape \(3, 2, 4\), expected \(3, 2, 5\)"):
        write_store(tmp_path / "s", ["a", "b", "c"], np.zeros((n, r, 4)), np.zeros((n, r, 4)),
                    np.zeros((n, r, 2)), np.ones(n))
    with pytest.raises(ValueError, match="unique image ids"):
        write_store(tmp_path / "s", ["a", "a", "c"], np.zeros((n, r, 4)), np.zeros((n, r, 5)),
                    np.zeros((n, r, 2)), np.ones(n))
    assert not (tmp_path / "s").exists()
    make_store(tmp_path / "t")
    (tmp_path / "t" / "image_ids.json").write_text(json.dumps(["x", "y"]))
    with pytest.raises(ValueError, match="features.npy has 5 rows for 2 image ids"):
        FeatureStore(tmp_path / "t")


def test_tokenizer_is_a_bert_tokenizer(smoke_world):
    tok = load_tokenizer(smoke_world.tokenizer_dir)
    assert tok.cls_token == "[CLS]" and tok.mask_token == "[MASK]" and tok.pad_token_id == 0
    enc = tok("what color is the dog?", "red")
    words = tok.convert_ids_to_tokens(enc["input_ids"])
    assert words[0] == "[CLS]" and words.count("[SEP]") == 2 and "[UNK]" not in words
    assert enc["token_type_ids"][-2] == 1 and enc["token_type_ids"][1] == 0
    with pytest.raises(FileNotFoundError):
        load_tokenizer(smoke_world.folder / "nope")


def test_tokenizer_vocabulary_is_the_same_in_every_process(smoke_world, tmp_path):
    """Two builds of a world must number its tokens alike (HF's WordPiece trainer did not: its
    order followed Rust hash maps, so every fresh world trained differently)."""
    import subprocess
    import sys
    corpus = smoke_world.folder / "vocabulary.txt"
    code = ("import sys; from vlstudy.data.tokenizer import train_tokenizer; "
            "train_tokenizer(sys.argv[1], sys.argv[2])")
    for i, seed in enumerate(("1", "2")):
        subprocess.run([sys.executable, "-c", code, str(corpus), str(tmp_path / str(i))], check=True,
                       env={**os.environ, "PYTHONHASHSEED": seed})
    first, second = ((tmp_path / str(i) / "vocab.txt").read_text() for i in (0, 1))
    assert first == second == (smoke_world.tokenizer_dir / "vocab.txt").read_text()
    vocab = first.split()
    assert vocab[:5] == ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] and len(set(vocab)) == len(vocab)
    tok = load_tokenizer(tmp_path / "0")
    # every word of the world's text is one token; an unseen word falls back to characters
    assert tok.tokenize("a dog on the grass") == ["a", "dog", "on", "the", "grass"]
    assert tok.tokenize("dogcat") == ["dog", "##c", "##a", "##t"]


def test_masking_statistics():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (4000, 64))
    special = torch.zeros_like(ids, dtype=torch.bool)
    special[:, 0] = special[:, -1] = True
    masked, labels = mask_tokens(ids, special, vocab_size=1000, mask_id=4, prob=0.15, gen=gen)
    chosen = labels != -100
    assert not chosen[special].any()
    assert chosen.sum() / (~special).sum() == pytest.approx(0.15, abs=0.003)
    assert (labels[chosen] == ids[chosen]).all()
    n = chosen.sum()
    as_mask = (masked[chosen] == 4).sum() / n
    kept = (masked[chosen] == ids[chosen]).sum() / n      # includes random draws of the same id
    assert as_mask == pytest.approx(0.8, abs=0.01)
    assert kept == pytest.approx(0.1, abs=0.01)
    assert 1 - as_mask - kept == pytest.approx(0.1, abs=0.01)
    assert (masked[~chosen] == ids[~chosen]).all()


def test_region_masking_statistics():
    gen = torch.Generator().manual_seed(1)
    feats = torch.randn(5000, 10, 8)
    valid = torch.arange(10)[None] < torch.randint(1, 11, (5000, 1))
    out, chosen = mask_regions(feats, valid, prob=0.15, gen=gen)
    assert not chosen[~valid].any()
    assert chosen.sum() / valid.sum() == pytest.approx(0.15, abs=0.005)
    zeroed = (out == 0).all(-1)
    assert not zeroed[~chosen].any()
    assert zeroed[chosen].float().mean() == pytest.approx(0.9, abs=0.015)
    assert torch.equal(out[chosen & ~zeroed], feats[chosen & ~zeroed])


def test_answer_vocab_and_targets():
    recs = [Record("a", "i", "q", answers=tuple(["down"] * 7 + ["at table", "skateboard", "table"])),
            Record("b", "i", "q", answers=tuple(["Two"] * 6 + ["3"] * 4))]
    vocab = AnswerVocab.build(recs, size=3)
    assert vocab.answers == ["down", "2", "3"]                  # by frequency, normalised
    t = vocab.targets(recs)
    np.testing.assert_allclose(t, [[1.0, 0, 0], [0, 1.0, 1.0]])   # "table" etc. are outside
    with pytest.raises(ValueError, match="no answers"):
        AnswerVocab.build([Record("c", "i", "q")])


def test_collator_batches_and_masks(smoke_world):
    tok = smoke_world.tokenizer
    ds = smoke_world.split("vqa_p", "train", max_text_len=20)
    coll = VLCollator(ds, tok.mask_token_id, len(tok), mlm_probability=0.15, region_mask_probability=0.15)
    b = coll([0, 3, 5, 7])
    st = smoke_world.store("coco")
    longest = int(ds.tokens["attention_mask"][[0, 3, 5, 7]].sum(1).max())
    assert b["input_ids"].shape == b["mlm_labels"].shape == (4, longest) and longest <= 20
    assert b["attention_mask"][:, -1].any()                     # padding shared by all is trimmed
    most = int(st.gather(ds.rows[[0, 3, 5, 7]])["num_regions"].max())
    assert b["features"].shape == (4, most, st.dim) and most <= st.max_regions
    assert b["region_mask"][:, -1].any()                        # region padding shared by all is trimmed
    assert b["boxes"].shape == (4, most, 5)
    assert b["region_targets"].shape == (4, most, st.num_classes)
    assert b["masked_regions"].dtype == torch.bool and not b["masked_regions"][~b["region_mask"]].any()
    assert (b["token_type_ids"] == 1).any()                    # "question [SEP] answer" is a pair
    again = coll([0, 3, 5, 7])
    for k in b:
        assert torch.equal(b[k], again[k]), k                  # a batch masks the same way each time


def test_task_targets(smoke_world):
    vqa = smoke_world.split("vqa_d", "train")
    assert vqa.targets.shape == (len(vqa), len(smoke_world.answer_vocab("vqa_d")))
    assert vqa.targets.max() == 1.0
    snli = smoke_world.split("snli_ve", "val")
    assert set(snli.targets.tolist()) == {0, 1, 2}
    mm = smoke_world.split("mmimdb", "train")
    assert mm.targets.shape[1] == 23 and (mm.targets.sum(1) >= 1).all()
    assert smoke_world.split("coco", "train").targets is None
    with pytest.raises(ValueError, match="has no split 'dev'"):
        smoke_world.split("coco", "dev")
    with pytest.raises(KeyError, match="no dataset 'vqa'"):
        smoke_world.info("vqa")
