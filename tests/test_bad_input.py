"""A catalogue of malformed inputs for every reader: one defect each on otherwise good files,
written here in the exact official formats. Each is refused with an error that names the
file, the record and what was expected; nothing is written, and a root prepared before
the failed attempt is left byte for byte as it was.

Two families: annotations (COCO captions, Karpathy, VQA 2.0, VizWiz, SNLI-VE, MM-IMDB, CC)
and region features (bottom-up TSV, MMF LMDB, MMF npy folders)."""
import base64
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from vlstudy.real.prepare import prepare

DIM, CLASSES, W, H = 4, 2, 640, 480          # feature width, detector classes, image size (px)


# --- good files, one writer per official format ------------------------------------------
def _json(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def _edit(path: Path, fn: Callable) -> None:
    obj = json.loads(path.read_text())
    fn(obj)
    _json(path, obj)


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _answers(a="yes"):
    return [{"answer": a, "answer_confidence": "yes", "answer_id": k + 1} for k in range(10)]


def coco_captions(d, images=(1, 2, 3)):
    return "coco_captions", {"train": [_json(d / "captions_train2014.json", {
        "images": [{"id": i, "file_name": f"COCO_train2014_{i:012d}.jpg", "width": W, "height": H} for i in images],
        "annotations": [{"image_id": i, "id": 10 + i, "caption": f"a dog on a mat {i}"} for i in images]})]}


def karpathy(d, images=(1, 2, 3)):
    return "karpathy", {"train": [_json(d / "dataset_coco.json", {"dataset": "coco", "images": [
        {"split": "train" if i % 2 else "restval", "cocoid": i, "imgid": i, "filename": f"COCO_val2014_{i:012d}.jpg",
         "sentences": [{"raw": f"a cat {i}.", "sentid": 10 * i, "imgid": i, "tokens": ["a", "cat"]}]}
        for i in images]})]}


def _vqa(d, images, kind):
    q = _json(d / "v2_OpenEnded_mscoco_train2014_questions.json", {"questions": [
        {"image_id": i, "question": f"Is it red {i}?", "question_id": 100 + i} for i in images]})
    a = _json(d / "v2_mscoco_train2014_annotations.json", {"annotations": [
        {"question_id": 100 + i, "image_id": i, "question_type": "is it", "answer_type": "yes/no",
         "multiple_choice_answer": "yes", "answers": _answers()} for i in images]})
    return kind, {"train": [q, a]}


def vqa2(d, images=(1, 2, 3)):
    return _vqa(d, images, "vqa2")


def vqa2_pretraining(d, images=(1, 2, 3)):
    return _vqa(d, images, "vqa2_pretraining")


def conceptual_captions(d, images=(1, 2, 3)):
    path = d / "train.tsv"
    path.write_text("".join(f"a photo of a tree {i}\thttp://example.com/{i}.jpg\n" for i in images))
    return "conceptual_captions", {"train": [path]}


def vizwiz(d, images=(1, 2, 3)):
    return "vizwiz", {"train": [_json(d / "train.json", [
        {"image": f"VizWiz_train_{i:08d}.jpg", "question": f"What is this {i}?", "answerable": 1,
         "answer_type": "other", "answers": _answers("soup")} for i in images])]}


def snli_ve(d, images=(1, 2, 3)):
    path = d / "snli_ve_train.jsonl"
    path.write_text("".join(json.dumps({"Flikr30kID": f"{i}.jpg", "gold_label": "entailment", "pairID": f"{i}r1e",
                                        "sentence1": "A man.", "sentence2": f"A person {i}."}) + "\n"
                            for i in images))
    return "snli_ve", {"train": [path]}


def mmimdb(d, images=(1, 2, 3)):
    root = d / "mmimdb"
    (root / "dataset").mkdir(parents=True, exist_ok=True)
    ids = [f"{i:07d}" for i in images]
    _json(root / "split.json", {"train": ids, "dev": [], "test": []})
    for i in ids:
        _json(root / "dataset" / f"{i}.json", {"genres": ["Drama", "Comedy"], "plot": [f"A plot {i}.", f"Longer plot {i}."]})
    return "mmimdb", {"train": [root]}


ANNOTATIONS = {f.__name__: f for f in (coco_captions, karpathy, vqa2, vqa2_pretraining, conceptual_captions,
                                        vizwiz, snli_ve, mmimdb)}


def feature_name(kind: str, i: int) -> str:
    """The name a detector file gives image ``i`` of the files above."""
    return {"conceptual_captions": f"train_{i - 1:08d}", "vizwiz": f"VizWiz_train_{i:08d}",
            "mmimdb": f"{i:07d}"}.get(kind, str(i))


def image(n: int = 2, seed: int = 0) -> dict:
    """One image's regions as MMF's feature dicts hold them (cls_prob background first)."""
    rng = np.random.default_rng(seed)
    x1, y1 = rng.uniform(0, 300, n), rng.uniform(0, 200, n)
    return {"features": rng.normal(size=(n, DIM)).astype(np.float32),
            "bbox": np.stack([x1, y1, x1 + 100, y1 + 100], 1).astype(np.float32),
            "cls_prob": rng.dirichlet(np.ones(CLASSES + 1), n).astype(np.float32),
            "num_boxes": n, "image_width": W, "image_height": H, "objects": np.zeros(n, np.int64)}


def _b64(a) -> str:
    return base64.b64encode(np.asarray(a, np.float32).tobytes()).decode()


def write_tsv(path: Path, items: dict) -> Path:
    with open(path, "w", newline="") as f:
        for name, it in items.items():
            f.write("\t".join([name, str(it["image_width"]), str(it["image_height"]), str(it["num_boxes"]),
                               _b64(it["bbox"]), _b64(it["features"])]) + "\r\n")
    return path


def write_lmdb(path: Path, items: dict, keys="all") -> Path:
    """MMF's layout; ``keys``: the b"keys" list ("all": every item's; None: no b"keys")."""
    import lmdb
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for name, it in items.items():
            txn.put(name.encode(), it if isinstance(it, bytes) else pickle.dumps({"feature_path": name, **it}))
        if keys is not None:
            txn.put(b"keys", pickle.dumps([n.encode() for n in items] if keys == "all" else keys))
    env.close()
    return path


def write_npy(path: Path, items: dict) -> Path:
    path.mkdir()
    for name, it in items.items():
        np.save(path / f"{name}.npy", it["features"])
        np.save(path / f"{name}_info.npy", {k: v for k, v in it.items() if k != "features"}, allow_pickle=True)
    return path


WRITERS = {"tsv": write_tsv, "lmdb": write_lmdb, "npy": write_npy}
SUFFIX = {"tsv": ".tsv", "lmdb": ".lmdb", "npy": ""}


def features(d: Path, kind: str, images=(1, 2, 3), form="tsv", change: Callable | None = None) -> Path:
    items = {feature_name(kind, i): image(seed=i) for i in images}
    if change is not None:                   # the defect goes into the last image
        last = list(items)[-1]
        items[last] = change(items[last])
    return WRITERS[form](d / f"regions{SUFFIX[form]}", items)


# --- the check every case makes -----------------------------------------------------------
def snapshot(root: Path) -> dict:
    """Every path under ``root`` with its bytes (folders as None)."""
    if not root.exists():
        return {}
    return {str(p.relative_to(root)): (None if p.is_dir() else p.read_bytes()) for p in sorted(root.rglob("*"))}


def refused(kind, splits, feats, root: Path, expect: str, name="good"):
    """``prepare`` fails with an error matching ``expect`` and leaves ``root`` as it was."""
    before = snapshot(root)
    with pytest.raises((ValueError, FileNotFoundError), match=expect):
        prepare(kind, splits, feats, root, name, store="shared", num_classes=CLASSES, log=lambda _: None)
    after = snapshot(root)
    assert after.keys() == before.keys(), f"paths added or removed: {sorted(after.keys() ^ before.keys())}"
    assert all(after[k] == before[k] for k in before), "bytes changed in the prepared root"


def good_root(tmp_path, kind_fn, images=(1, 2, 3), form="tsv") -> Path:
    """A root with a dataset "good" and its store "shared", prepared from good files."""
    d = tmp_path / "good_files"
    d.mkdir()
    kind, splits = kind_fn(d, images)
    root = tmp_path / "root"
    prepare(kind, splits, [features(d, kind, images, form)], root, "good", store="shared",
            num_classes=CLASSES, log=lambda _: None)
    return root


# --- annotations --------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    fmt: str                    # the writer of the good files (ANNOTATIONS) or a feature form
    name: str
    defect: Callable            # (folder of the files) -> None, or (image dict) -> image dict
    expect: str                 # regex: the file, the record and what was expected


def _q(d):
    return d / "v2_OpenEnded_mscoco_train2014_questions.json"


def _a(d):
    return d / "v2_mscoco_train2014_annotations.json"


def _set(path_of, fn):
    return lambda d: _edit(path_of(d), fn)


COCO = lambda d: d / "captions_train2014.json"                    # noqa: E731
KARPATHY = lambda d: d / "dataset_coco.json"                      # noqa: E731
VIZWIZ = lambda d: d / "train.json"                               # noqa: E731
SPLIT_JSON = lambda d: d / "mmimdb" / "split.json"                # noqa: E731
MOVIE = lambda d: d / "mmimdb" / "dataset" / "0000002.json"       # noqa: E731


def _lines(path_of, fn):
    """Rewrite a line-based file's text lines with ``fn(list of lines)``."""
    def apply(d):
        p = path_of(d)
        p.write_bytes(fn(p.read_bytes().splitlines(keepends=True)))
    return apply


CC = lambda d: d / "train.tsv"                                    # noqa: E731
SNLI = lambda d: d / "snli_ve_train.jsonl"                        # noqa: E731


def _snli(fn):
    def change(lines):
        objs = [json.loads(x) for x in lines]
        fn(objs[1])
        return b"".join(json.dumps(o).encode() + b"\n" for o in objs)
    return _lines(SNLI, change)


ANNOTATION_CASES = [
    # COCO Captions
    Case("coco_captions", "truncated file", lambda d: _truncate(COCO(d)), r"captions_train2014\.json: malformed JSON"),
    Case("coco_captions", "annotations key renamed", _set(COCO, lambda o: o.update(anns=o.pop("annotations"))),
         r"captions_train2014\.json: missing field 'annotations'"),
    Case("coco_captions", "caption not a string", _set(COCO, lambda o: o["annotations"][1].update(caption=7)),
         r"captions_train2014\.json: annotations\[1\]: field 'caption' should be str, got int"),
    Case("coco_captions", "empty caption", _set(COCO, lambda o: o["annotations"][1].update(caption="  ")),
         r"annotations\[1\]: field 'caption' is empty"),
    Case("coco_captions", "duplicate caption id", _set(COCO, lambda o: o["annotations"][1].update(id=11)),
         r"captions_train2014\.json.*record id '11' occurs more than once"),
    Case("coco_captions", "caption of an image the file lacks",
         _set(COCO, lambda o: o["annotations"][2].update(image_id=99)),
         r"annotations\[2\]: image_id 99 is not in the file's images"),
    Case("coco_captions", "image id a string", _set(COCO, lambda o: o["images"][0].update(id="1")),
         r"images\[0\]: field 'id' should be int, got str"),
    # Karpathy
    Case("karpathy", "unknown split name", _set(KARPATHY, lambda o: o["images"][1].update(split="trian")),
         r"dataset_coco\.json: images\[1\]: field 'split' is 'trian', expected one of"),
    Case("karpathy", "sentences missing", _set(KARPATHY, lambda o: o["images"][0].pop("sentences")),
         r"dataset_coco\.json: images\[0\]: missing field 'sentences'"),
    Case("karpathy", "cocoid a string", _set(KARPATHY, lambda o: o["images"][2].update(cocoid="3")),
         r"images\[2\]: field 'cocoid' should be int, got str"),
    Case("karpathy", "image without sentences", _set(KARPATHY, lambda o: o["images"][2].update(sentences=[])),
         r"images\[2\]: image 3 has no sentences"),
    Case("karpathy", "sentid true", _set(KARPATHY, lambda o: o["images"][0]["sentences"][0].update(sentid=True)),
         r"images\[0\] sentences\[0\]: field 'sentid' should be int, got bool"),
    # VQA 2.0
    Case("vqa2", "annotation of a question the questions file lacks",
         _set(_a, lambda o: o["annotations"].append({**o["annotations"][0], "question_id": 999})),
         r"annotations\.json: annotations\[3\]: question 999 is not in .*questions\.json"),
    Case("vqa2", "question with no annotation", _set(_a, lambda o: o["annotations"].pop(1)),
         r"questions\.json: questions\[1\]: question 102 has no entry in .*annotations\.json"),
    Case("vqa2", "nine answers", _set(_a, lambda o: o["annotations"][2]["answers"].pop()),
         r"annotations\.json: annotations\[2\] \(question 103\): expected 10 answers, got 9"),
    Case("vqa2", "unknown answer type", _set(_a, lambda o: o["annotations"][0].update(answer_type="colour")),
         r"annotations\[0\] \(question 101\): field 'answer_type' is 'colour', expected one of"),
    Case("vqa2", "question id a string", _set(_q, lambda o: o["questions"][1].update(question_id="102")),
         r"questions\.json: questions\[1\]: field 'question_id' should be int, got str"),
    Case("vqa2", "question annotated twice",
         _set(_a, lambda o: o["annotations"].append(dict(o["annotations"][0]))),
         r"annotations\.json: annotations\[3\]: question 101 is annotated twice \(first at annotations\[0\]\)"),
    Case("vqa2", "annotation and question disagree on the image",
         _set(_a, lambda o: o["annotations"][1].update(image_id=3)),
         r"annotations\[1\] \(question 102\): image_id 3 differs from the question's 2"),
    Case("vqa2", "empty question", _set(_q, lambda o: o["questions"][0].update(question="")),
         r"questions\[0\]: field 'question' is empty"),
    Case("vqa2", "answers key renamed", _set(_a, lambda o: o["annotations"][0].update(ans=o["annotations"][0].pop("answers"))),
         r"annotations\[0\] \(question 101\): missing field 'answers'"),
    Case("vqa2", "answer a number", _set(_a, lambda o: o["annotations"][0]["answers"][4].update(answer=2)),
         r"annotations\[0\] \(question 101\) answer 4: field 'answer' should be str, got int"),
    Case("vqa2", "duplicate question id",
         _set(_q, lambda o: o["questions"].append(dict(o["questions"][0]))),
         r"questions\.json: questions\[3\]: question 101 occurs twice in the file"),
    Case("vqa2", "questions file not UTF-8", lambda d: _q(d).write_bytes(_q(d).read_bytes().replace(b"red", b"r\xe9d")),
         r"questions\.json: not UTF-8 text"),
    Case("vqa2", "questions file of another kind", lambda d: _json(_q(d), [{"question_id": 101}]),
         r"questions\.json: expected a JSON object, got list"),
    Case("vqa2_pretraining", "annotation of a question the questions file lacks",
         _set(_a, lambda o: o["annotations"].append({**o["annotations"][0], "question_id": 7})),
         r"question 7 is not in .*questions\.json"),
    # Conceptual Captions
    Case("conceptual_captions", "one column", _lines(CC, lambda ls: ls[0] + b"no url here\n" + b"".join(ls[2:])),
         r"train\.tsv:2: expected 'caption<TAB>url', got 1 column"),
    Case("conceptual_captions", "empty caption", _lines(CC, lambda ls: ls[0] + b" \thttp://x/2.jpg\n" + b"".join(ls[2:])),
         r"train\.tsv:2: empty caption"),
    Case("conceptual_captions", "not UTF-8", _lines(CC, lambda ls: ls[0] + b"caf\xe9\thttp://x\n" + b"".join(ls[2:])),
         r"train\.tsv:2: not UTF-8 text"),
    Case("conceptual_captions", "empty file", lambda d: CC(d).write_text(""), r"conceptual_captions train .*: no records"),
    Case("conceptual_captions", "empty url", _lines(CC, lambda ls: b"".join(ls[:2]) + b"a tree\t\n"),
         r"train\.tsv:3: empty url"),
    # VizWiz
    Case("vizwiz", "an object, not a list", lambda d: _json(VIZWIZ(d), {"image": "VizWiz_train_00000001.jpg"}),
         r"train\.json: expected a JSON list of questions, got dict"),
    Case("vizwiz", "eight answers", _set(VIZWIZ, lambda o: o[1].update(answers=o[1]["answers"][:8])),
         r"train\.json: \[1\]: expected 10 answers, got 8"),
    Case("vizwiz", "unknown answer type", _set(VIZWIZ, lambda o: o[0].update(answer_type="maybe")),
         r"train\.json: \[0\]: field 'answer_type' is 'maybe', expected one of"),
    Case("vizwiz", "image asked twice", _set(VIZWIZ, lambda o: o[2].update(image=o[0]["image"])),
         r"vizwiz train .*record id 'VizWiz_train_00000001' occurs more than once"),
    Case("vizwiz", "image a number", _set(VIZWIZ, lambda o: o[2].update(image=3)),
         r"train\.json: \[2\]: field 'image' should be str, got int"),
    Case("vizwiz", "truncated file", lambda d: _truncate(VIZWIZ(d)), r"train\.json: malformed JSON"),
    # SNLI-VE
    Case("snli_ve", "no-consensus label", _snli(lambda o: o.update(gold_label="-")),
         r"snli_ve_train\.jsonl:2: gold_label '-' is not one of"),
    Case("snli_ve", "truncated last line", _lines(SNLI, lambda ls: b"".join(ls[:2]) + ls[2][:20]),
         r"snli_ve_train\.jsonl:3: malformed JSON"),
    Case("snli_ve", "empty hypothesis", _snli(lambda o: o.update(sentence2="")),
         r"snli_ve_train\.jsonl:2: field 'sentence2' is empty"),
    Case("snli_ve", "pairID missing", _snli(lambda o: o.pop("pairID")), r"snli_ve_train\.jsonl:2: missing field 'pairID'"),
    Case("snli_ve", "image id not a Flickr number", _snli(lambda o: o.update(Flikr30kID="poster.jpg")),
         r"snli_ve_train\.jsonl:2: image name 'poster\.jpg' does not end in a number"),
    Case("snli_ve", "image id a number", _snli(lambda o: o.update(Flikr30kID=2)),
         r"snli_ve_train\.jsonl:2: the image id should be a string, got int"),
    # MM-IMDB
    Case("mmimdb", "split.json without the split", _set(SPLIT_JSON, lambda o: o.pop("train")),
         r"split\.json: missing field 'train'"),
    Case("mmimdb", "listed movie without its file", lambda d: MOVIE(d).unlink(),
         r"split\.json: train\[1\] lists movie 0000002, but .*0000002\.json does not exist"),
    Case("mmimdb", "genres not a list", _set(MOVIE, lambda o: o.update(genres="Drama")),
         r"0000002\.json: field 'genres' should be list, got str"),
    Case("mmimdb", "a genre not a string", _set(MOVIE, lambda o: o.update(genres=["Drama", 7])),
         r"0000002\.json: field 'genres' should be a list of strings, got \['Drama', 7\]"),
    Case("mmimdb", "empty plot list", _set(MOVIE, lambda o: o.update(plot=[])),
         r"0000002\.json: field 'plot' should be a non-empty list of strings"),
    Case("mmimdb", "id a number", _set(SPLIT_JSON, lambda o: o["train"].__setitem__(1, 2)),
         r"split\.json: train\[1\] should be an IMDb id string, got int"),
    Case("mmimdb", "truncated movie file", lambda d: _truncate(MOVIE(d)), r"0000002\.json: malformed JSON"),
]


@pytest.mark.parametrize("case", ANNOTATION_CASES, ids=lambda c: f"{c.fmt}: {c.name}")
def test_annotation_catalogue(case, tmp_path):
    root = good_root(tmp_path, ANNOTATIONS[case.fmt])
    d = tmp_path / "files"
    d.mkdir()
    kind, splits = ANNOTATIONS[case.fmt](d)
    feats = [features(d, kind, (1, 2, 3, 4))]
    case.defect(d)
    refused(kind, splits, feats, root, case.expect)                  # over a prepared root
    refused(kind, splits, feats, tmp_path / "fresh", case.expect)    # into a new one: nothing made


def test_annotation_catalogue_covers_every_format_twenty_times_over():
    assert len(ANNOTATION_CASES) >= 20
    assert {c.fmt for c in ANNOTATION_CASES} == set(ANNOTATIONS)


def test_records_whose_image_has_no_features_are_refused_naming_the_image(tmp_path):
    root = good_root(tmp_path, vqa2, images=(1, 2))
    d = tmp_path / "files"
    d.mkdir()
    kind, splits = vqa2(d, images=(1, 2, 3))
    refused(kind, splits, [features(d, kind, (1, 2))], root,
            r"1 image\(s\) have no features in .*regions\.tsv.*first: image '3' of train record '103'")


# --- region features ----------------------------------------------------------------------
@dataclass(frozen=True)
class FeatureCase:
    form: str                               # tsv, lmdb, npy
    name: str
    expect: str                             # after the file and image, e.g. "regions.tsv:3 (image 3): "
    item: Callable | None = None            # the defect in image 3's dict
    file: Callable | None = None            # or in the written file (its path)
    where: bool = True                      # the message starts with the file and image


WHERE = {"tsv": r"regions\.tsv:3 \(image 3\): ", "lmdb": r"regions\.lmdb\[b'3'\]: ", "npy": r"regions/3\.npy: "}


def _with(**changes):
    """Image 3's dict with some entries replaced: a value, or a function of the old one."""
    def change(it):
        it = dict(it)
        for k, v in changes.items():
            if v is _DROP:
                it.pop(k)
            else:
                it[k] = v(it[k].copy() if hasattr(it[k], "copy") else it[k]) if callable(v) else v
        return it
    return change


_DROP = object()


def _at(index, value):
    def put(a):
        a[index] = value
        return a
    return put


def _tsv_line3(fn):
    """Rewrite the TSV's third line (image 3) field by field."""
    def apply(path):
        lines = path.read_bytes().split(b"\r\n")
        lines[2] = fn(lines[2].split(b"\t"))
        path.write_bytes(b"\r\n".join(lines))
    return apply


def _join(fields):
    return b"\t".join(fields)


EVERY_FORM = [
    ("NaN in the features", _with(features=_at((1, 2), np.nan)), r"features of region 1 hold NaN or infinite values"),
    ("infinite box", _with(bbox=_at((0, 3), np.inf)), r"boxes of region 0 hold NaN or infinite values"),
    ("box outside the image", _with(bbox=_at((0, 2), 700.0)), r"box of region 0 .* is not an \(x1, y1, x2, y2\) "
                                                              r"box inside the 640x480 image"),
    ("box with x2 < x1", _with(bbox=_at(1, [300, 10, 200, 50])), r"box of region 1 \[300\.0, 10\.0, 200\.0, 50\.0\]"),
    ("features of another width", _with(features=lambda f: np.ones((2, 5), np.float32)),
     r"features have shape \(2, 5\), expected \(N, 4\)"),
    ("zero image width", _with(image_width=0), r"image size 0x480 is not positive"),
    ("no regions", _with(features=lambda f: f[:0], bbox=lambda b: b[:0], cls_prob=lambda c: c[:0], num_boxes=0),
     r"(num_boxes is 0|no regions); an image needs at least one"),
]

FEATURE_CASES = [FeatureCase(form, name, expect, item=item) for form in ("tsv", "lmdb", "npy")
                 for name, item, expect in EVERY_FORM] + [
    # bottom-up TSV
    FeatureCase("tsv", "five fields", r"regions\.tsv:3: expected 6 tab-separated fields", where=False,
                file=_tsv_line3(lambda f: _join(f[:5]))),
    FeatureCase("tsv", "file cut inside the features", r"field 'features' is not base64 float32 data",
                file=lambda p: p.write_bytes(p.read_bytes()[:-9])),
    FeatureCase("tsv", "undecodable base64", r"field 'features' is not base64 float32 data",
                file=_tsv_line3(lambda f: _join(f[:5] + [b"!!!!" + f[5][4:]]))),
    FeatureCase("tsv", "num_boxes disagrees with the rows", r"field 'boxes' holds 8 floats, expected num_boxes 3 x 4",
                file=_tsv_line3(lambda f: _join(f[:3] + [b"3"] + f[4:]))),
    FeatureCase("tsv", "num_boxes not a number", r"image_w, image_h and num_boxes must be integers",
                file=_tsv_line3(lambda f: _join(f[:3] + [b"two"] + f[4:]))),
    FeatureCase("tsv", "not ASCII", r"regions\.tsv:3: not ASCII \(byte 1 of the line\)", where=False,
                file=_tsv_line3(lambda f: _join([b"3\xe9"] + f[1:]))),
    FeatureCase("tsv", "an image twice", r"regions\.tsv:4 \(image 3\): image '3' has features twice", where=False,
                file=lambda p: p.write_bytes(p.read_bytes() + p.read_bytes().split(b"\r\n")[2] + b"\r\n")),
    FeatureCase("tsv", "image name without a number", r"regions\.tsv:3 \(image poster\): image name 'poster' does "
                r"not end in a number", where=False, file=_tsv_line3(lambda f: _join([b"poster"] + f[1:]))),
    # MMF LMDB
    FeatureCase("lmdb", "no key list", r"regions\.lmdb: no b'keys' entry", where=False,
                file=lambda p: write_lmdb(_fresh(p), {str(i): image(seed=i) for i in (1, 2, 3)}, keys=None)),
    FeatureCase("lmdb", "a listed key not stored", r"listed in b'keys' but not stored",
                file=lambda p: write_lmdb(_fresh(p), {str(i): image(seed=i) for i in (1, 2)}, keys=[b"1", b"2", b"3"])),
    FeatureCase("lmdb", "key list not a list", r"regions\.lmdb\[b'keys'\]: expected a list of byte-string keys, "
                r"got dict", where=False,
                file=lambda p: write_lmdb(_fresh(p), {str(i): image(seed=i) for i in (1, 2, 3)}, keys={"3": 1})),
    FeatureCase("lmdb", "truncated value", r"not a readable pickle",
                file=lambda p: write_lmdb(_fresh(p), {"1": image(seed=1), "2": image(seed=2),
                                                     "3": pickle.dumps(image(seed=3))[:40]})),
    FeatureCase("lmdb", "value a list", r"expected a dict of features and info, got list",
                file=lambda p: write_lmdb(_fresh(p), {"1": image(seed=1), "2": image(seed=2),
                                                     "3": pickle.dumps([1, 2])})),
    FeatureCase("lmdb", "not an LMDB", r"regions\.lmdb: not a readable LMDB", where=False,
                file=lambda p: (p / "data.mdb").write_bytes(b"\0" * 4096)),
    FeatureCase("lmdb", "bbox missing", r"missing field\(s\) \['bbox'\]", item=_with(bbox=_DROP)),
    FeatureCase("lmdb", "cls_prob of five columns", r"cls_prob has 5 columns; expected 2 \(no background\) or 3",
                item=_with(cls_prob=lambda c: np.full((2, 5), 0.2, np.float32))),
    FeatureCase("lmdb", "cls_prob rows disagree", r"cls_prob has shape \(1, 3\), expected \(2, classes\)",
                item=_with(cls_prob=lambda c: c[:1])),
    FeatureCase("lmdb", "num_boxes above the rows", r"num_boxes is 5 but features have only 2 rows",
                item=_with(num_boxes=5)),
    FeatureCase("lmdb", "features None", r"field\(s\) \['features'\] are None", item=_with(features=None)),
    FeatureCase("lmdb", "a key not UTF-8", r"regions\.lmdb\[b'3\\xff'\]: the key is not UTF-8 text", where=False,
                file=lambda p: write_lmdb(_fresh(p), {"1": image(seed=1), "2": image(seed=2)},
                                          keys=[b"1", b"2", b"3\xff"])),
    FeatureCase("lmdb", "negative class score", r"cls_prob holds values outside \[0, 1\]",
                item=_with(cls_prob=_at((0, 1), -0.5))),
    FeatureCase("lmdb", "NaN class score", r"cls_prob of region 1 hold NaN", item=_with(cls_prob=_at((1, 0), np.nan))),
    FeatureCase("lmdb", "image size not a number", r"image size, num_boxes and arrays must be numbers \(invalid literal for int\(\) with base 10: .wide.\)",
                item=_with(image_width="wide")),
    FeatureCase("lmdb", "cls_prob missing for one image", r"(have no cls_prob|have none) \(first: .*regions\.lmdb\[b'3'\]\): all or none must",
                where=False,
                item=_with(cls_prob=None)),
    # MMF npy folders
    FeatureCase("npy", "no info file", r"regions/3\.npy: no 3_info\.npy beside it", where=False,
                file=lambda p: (p / "3_info.npy").unlink()),
    FeatureCase("npy", "truncated features file", r"regions/3\.npy: not a readable \.npy file", where=False,
                file=lambda p: _truncate(p / "3.npy")),
    FeatureCase("npy", "truncated info file", r"regions/3_info\.npy: not a readable \.npy file", where=False,
                file=lambda p: _truncate(p / "3_info.npy")),
    FeatureCase("npy", "info an array", r"regions/3_info\.npy: expected a pickled dict", where=False,
                file=lambda p: np.save(p / "3_info.npy", np.zeros(3))),
    FeatureCase("npy", "image height missing", r"missing field\(s\) \['image_height'\]",
                item=_with(image_height=_DROP)),
    FeatureCase("npy", "features one-dimensional", r"features have shape \(8,\), expected \(N, D\)",
                item=_with(features=lambda f: f.ravel())),
    FeatureCase("npy", "cls_prob of one column", r"cls_prob has 1 columns; expected 2", item=_with(cls_prob=lambda c: c[:, :1])),
]


def _fresh(path: Path) -> Path:
    """Remove what the case's good writer put at ``path``, for a writer of its own."""
    import shutil
    shutil.rmtree(path)
    return path


@pytest.mark.parametrize("case", FEATURE_CASES, ids=lambda c: f"{c.form}: {c.name}")
def test_region_feature_catalogue(case, tmp_path):
    root = good_root(tmp_path, vqa2, images=(1, 2), form=case.form)      # images 1, 2 in the store
    d = tmp_path / "files"
    d.mkdir()
    kind, splits = vqa2(d, images=(1, 2, 3))
    path = features(d, kind, (1, 2, 3), case.form, change=case.item)
    if case.file is not None:
        case.file(path)
    expect = (WHERE[case.form] if case.where else "") + case.expect
    refused(kind, splits, [path], root, expect)                      # extending the store
    refused(kind, splits, [path], tmp_path / "fresh", expect)        # a new store


def test_feature_catalogue_has_twenty_cases_and_every_form():
    assert len(FEATURE_CASES) >= 20
    assert {c.form for c in FEATURE_CASES} == set(WRITERS)


# --- what the real releases carry that is odd but not an error -----------------------------
def test_the_releases_oddities_are_accepted_counted_and_reported(tmp_path):
    kind, splits = mmimdb(tmp_path)
    _edit(MOVIE(tmp_path), lambda o: o.update(genres=["Drama", "News", "Reality-TV"]))
    _edit(tmp_path / "mmimdb" / "dataset" / "0000003.json", lambda o: o.update(genres=["News"]))
    lines = []
    got = prepare(kind, splits, [features(tmp_path, kind)], tmp_path / "r1", "mmimdb", num_classes=CLASSES,
                  log=lines.append)
    assert got["accepted"] == {"MM-IMDB genre 'News' outside the 23 labels (dropped from the labels)": 2,
                               "MM-IMDB genre 'Reality-TV' outside the 23 labels (dropped from the labels)": 1,
                               "MM-IMDB movies with none of the 23 genres (kept, with no labels)": 1}
    assert "accepted: 2 x MM-IMDB genre 'News' outside the 23 labels" in lines[0]
    labels = [json.loads(x).get("labels") for x in (tmp_path / "r1/datasets/mmimdb/train.jsonl").read_text().splitlines()]
    assert labels[:2] == [["Drama", "Comedy"], ["Drama"]] and not labels[2]

    # MMF's feature extraction counts only the confident boxes in num_boxes, and keeps every row
    d = tmp_path / "mmf"
    d.mkdir()
    kind, splits = vqa2(d)
    got = prepare(kind, splits, [features(d, kind, form="lmdb", change=_with(num_boxes=1))], tmp_path / "r4", "vqa",
                  num_classes=CLASSES, log=lines.append)
    assert got["images"] == 3

    d = tmp_path / "vqa"
    d.mkdir()
    kind, splits = vqa2(d)
    _edit(_a(d), lambda o: o["annotations"].pop(0))                      # question 101 has no annotation
    got = prepare(kind, {"test": splits["train"]}, [features(d, kind)], tmp_path / "r2", "vqa", num_classes=CLASSES,
                  log=lines.append)
    assert got["accepted"] == {"VQA test questions with no annotation (left out)": 1} and got["test_records"] == 2
    with pytest.raises(ValueError, match="question 101 has no entry"):     # in a training split: refused
        prepare(kind, splits, [features(d, kind)], tmp_path / "r3", "vqa", num_classes=CLASSES, log=lines.append)


# --- the study's own inputs ---------------------------------------------------------------
@pytest.mark.parametrize("notebook,params,error,expect", [
    ("domain_match", {"blocks": "two"}, ValueError, r"notebook 'domain_match': parameter 'blocks' should be int, "
                                                    r"got str 'two'"),
    ("domain_match", {"blocks": True}, ValueError, r"parameter 'blocks' should be int, got bool True"),
    ("domain_match", {"tasks": "vqa_d"}, ValueError, r"parameter 'tasks' should be list, got str"),
    ("dataset_size", {"cc_epoch_steps": 1.5}, ValueError, r"parameter 'cc_epoch_steps' should be int, got float"),
    ("domain_match", {"tasks": ["vqa_d", "vqa_x"]}, ValueError,
     r"parameter 'tasks' names task 'vqa_x', which 'smoke' does not have; known: \['mmimdb', 'snli_ve', 'vizwiz', "
     r"'vqa_d'\]"),
    ("domain_match", {"pretraining_sets": ["none", "cocoa"]}, ValueError, r"names pretraining set 'cocoa'"),
    ("domain_match", {"tasks": ["coco"]}, ValueError, r"names task 'coco'"),                  # a pretraining set
    ("domain_match", {"archs": ["visualbert"]}, ValueError, r"names arch 'visualbert'.*\['vilbert', 'visual_bert'\]"),
    ("model_choice", {"checkpoint_set": "vqa"}, ValueError, r"parameter 'checkpoint_set' names pretraining set 'vqa'"),
    ("domain_match", {"recipe": {"pretrain_lr": "5e-5"}}, ValueError,          # YAML reads 5e-5 as a string
     r"recipe: pretrain_lr should be float, got str '5e-5'"),
    ("domain_match", {"recipe": {"pretrain_rate": 1e-3}}, ValueError, r"recipe settings \['pretrain_rate'\] are not"),
    ("domain_match", {"primary": [{"arch": "visual_bert", "task": "vqa_d", "a": "cocoa", "b": "none"}]}, ValueError,
     r"parameter 'primary\[0\]\.a' names pretraining set 'cocoa'"),
    ("domain_match", {"recipe": {"bert_dir": "/no/such/bert"}}, FileNotFoundError,
     r"recipe\.bert_dir: /no/such/bert does not exist"),
    ("domain_match", {"pretraining_sets": ["none", "mmf:/no/such/visual_bert.pth"]}, FileNotFoundError,
     r"pretraining_sets: /no/such/visual_bert\.pth does not exist"),
])
def test_a_bad_profile_is_one_line_before_any_notebook_runs(notebook, params, error, expect, tmp_path,
                                                           monkeypatch, capsys):
    import yaml
    from vlstudy import profiles, runner
    from vlstudy.cli import main
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"common": {"world": "smoke"},
                                                       "notebooks": {notebook: params}}))
    monkeypatch.setattr(profiles, "params_dir", lambda: tmp_path)
    monkeypatch.setenv("VLSTUDY_OUTPUT_ROOT", str(tmp_path / "out"))
    with pytest.raises(error, match=expect):
        runner.run_study("bad", out_root=tmp_path / "out")
    assert main(["study", "--profile", "bad"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vlstudy study: ")
    assert not list((tmp_path / "out").glob("**/*.ipynb")) and not list((tmp_path / "out").glob("**/runs/*"))


def test_a_study_refuses_unknown_names_and_missing_starts_when_it_makes_the_spec(smoke_world, monkeypatch):
    from vlstudy.study import Recipe, Study
    monkeypatch.setenv("VLSTUDY_OUTPUT_ROOT", str(smoke_world.folder.parent.parent))
    study = Study(Recipe(world="smoke"))
    with pytest.raises(ValueError, match=r"unknown model 'visualbert'; known: \['visual_bert', 'vilbert'\]"):
        study.finetuning("visualbert", "vqa_d", "none")
    with pytest.raises(ValueError, match=r"no dataset 'cocoa' in 'smoke'"):
        study.finetuning("visual_bert", "vqa_d", "cocoa")
    with pytest.raises(ValueError, match=r"finetune_steps gives no updates for task 'coco'"):
        study.finetuning("visual_bert", "coco", "none")
    with pytest.raises(ValueError, match=r"'coco' is a pretraining set: it cannot be finetuned on"):
        Study(Recipe(world="smoke", finetune_steps=100)).finetuning("visual_bert", "coco", "none")
    with pytest.raises(ValueError, match=r"'vqa_d' is a task: it cannot be pretrained on"):
        study.pretraining("visual_bert", "vqa_d")
    with pytest.raises(FileNotFoundError, match=r"/no/such/checkpoint\.pth does not exist"):
        study.finetuning("visual_bert", "vqa_d", "mmf:/no/such/checkpoint.pth")
    with pytest.raises(FileNotFoundError, match=r"/no/bert does not exist"):
        Study(Recipe(world="smoke", bert_dir="/no/bert")).pretraining("visual_bert", "coco")
    assert study.finetuning("visual_bert", "vqa_d", "coco").dataset == "vqa_d"        # good names still pass
    flickr_g = study.captions("snli_ve", study.captioner("coco"))       # a task's images, generated text
    assert study.pretraining("visual_bert", "snli_ve", text_from=flickr_g).text_from == flickr_g.id
