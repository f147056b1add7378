"""The real-data path: official-format readers, feature files, prepare, and the round trip
of the synthetic world through the official formats. Every file here is written by the
test in the exact official layout."""
import base64
import json
import pickle

import numpy as np
import pytest

from vlstudy.data.root import DataRoot
from vlstudy.real import annotations as ann
from vlstudy.real.export import export_world, prepare_exported
from vlstudy.real.prepare import prepare
from vlstudy.real.regions import ImageRegions, read_bottom_up_tsv, to_store_rows

SPLITS = ("train", "val", "test")


@pytest.fixture(scope="module")
def round_trip(smoke_world, tmp_path_factory):
    folder = tmp_path_factory.mktemp("export")
    manifest = export_world(smoke_world, folder / "official")
    out = folder / "prepared"
    lines = []
    summaries = prepare_exported(folder / "official", out, log=lines.append)
    return smoke_world, folder / "official", DataRoot(out, tokenizer_dir=smoke_world.tokenizer_dir), \
        manifest, summaries, lines


def test_export_writes_the_official_layouts(round_trip):
    _, official, _, manifest, _, _ = round_trip
    assert set(manifest) == {"coco", "vqa_p", "vqa_d", "cc_full", "vizwiz", "snli_ve", "mmimdb"}
    q = json.loads((official / "vqa" / "questions_train.json").read_text())["questions"][0]
    assert set(q) == {"image_id", "question", "question_id"}
    a = json.loads((official / "vqa" / "annotations_train.json").read_text())["annotations"][0]
    assert [x["answer_id"] for x in a["answers"]] == list(range(1, 11))
    assert (official / "cc_features.tsv").read_bytes().split(b"\n")[0].endswith(b"\r")   # csv's \r\n
    first = (official / "cc" / "train.tsv").read_text().split("\n")[0].split("\t")
    assert len(first) == 2 and first[1].startswith("https://")
    snli = [json.loads(line) for line in (official / "snli_ve" / "snli_ve_train.jsonl").read_text().splitlines()]
    assert snli[0]["Flikr30kID"].endswith(".jpg") and list(snli[0]) == sorted(snli[0])
    assert "Flickr30K_ID" in json.loads((official / "snli_ve" / "snli_ve_val.jsonl").read_text().split("\n")[0])
    assert set(json.loads((official / "mmimdb" / "split.json").read_text())) == {"train", "dev", "test"}
    assert isinstance(json.loads((official / "vizwiz" / "val.json").read_text()), list)
    assert list((official / "vizwiz_features").glob("*_info.npy"))


def test_round_trip_gives_back_the_worlds_records_and_features(round_trip):
    world, _, prepared, manifest, summaries, lines = round_trip
    assert len(lines) == len(manifest) and all(line.startswith("prepared ") for line in lines)
    for name in manifest:
        assert prepared.info(name).task == world.info(name).task
        for split in SPLITS:
            theirs, ours = world.records(name, split), prepared.records(name, split)
            content = lambda recs: [(r.text, r.answers, r.answer_type, r.label, r.labels) for r in recs]  # noqa: E731
            assert content(ours) == content(theirs), (name, split)
            w_store, p_store = world.store(world.info(name).store), prepared.store(prepared.info(name).store)
            w = w_store.gather(w_store.index_of([r.image_id for r in theirs]))
            p = p_store.gather(p_store.index_of([r.image_id for r in ours]))
            np.testing.assert_array_equal(p["num_regions"], w["num_regions"])
            np.testing.assert_array_equal(p["features"], w["features"])
            valid = np.arange(w["features"].shape[1]) < w["num_regions"][:, None]     # padding is no data
            if manifest[name]["features"][0].endswith(".tsv"):    # bottom-up TSVs carry no cls_prob
                assert not p["cls_prob"].any() and summaries[name]["cls_prob"] is False
            else:
                np.testing.assert_array_equal(p["cls_prob"][valid], w["cls_prob"][valid])
            np.testing.assert_allclose(p["boxes"], w["boxes"], atol=1e-6)
    assert summaries["vqa_d"]["images"] > 0       # extended the store COCO captions had started


def test_prepared_data_feeds_the_loader(round_trip):
    from vlstudy.data.batching import VLCollator
    _, _, prepared, _, _, _ = round_trip
    ds = prepared.split("vqa_d", "train")
    batch = VLCollator(ds, prepared.tokenizer.mask_token_id, len(prepared.tokenizer), 0.0, 0.0)([0, 1, 2])
    assert batch["features"].shape[0] == 3 and batch["targets"].sum() > 0


# --- annotation readers on broken files ---------------------------------------------------
def _write(path, obj):
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def _vqa_files(tmp_path, answers=10):
    q = _write(tmp_path / "q.json", {"questions": [{"image_id": 9, "question": "What?", "question_id": 9000}]})
    a = _write(tmp_path / "a.json", {"annotations": [{"question_id": 9000, "image_id": 9, "answer_type": "other",
                                                      "answers": [{"answer": "x", "answer_id": k + 1}
                                                                  for k in range(answers)]}]})
    return q, a


def test_vqa_reader_and_its_errors(tmp_path):
    q, a = _vqa_files(tmp_path)
    rec, = ann.read_vqa2(q, a)
    assert (rec.id, rec.image_id, rec.answers, rec.answer_type) == ("9000", "9", ("x",) * 10, "other")
    assert ann.read_vqa2(q)[0].answers == ()                                      # test split
    (tmp_path / "x").mkdir()
    _, bad = _vqa_files(tmp_path / "x", answers=9)
    with pytest.raises(ValueError, match=r"a\.json: annotations\[0\] \(question 9000\): expected 10 answers, got 9"):
        ann.read_vqa2(q, bad)
    _write(q, '{"questions": [')
    with pytest.raises(ValueError, match=r"q\.json: malformed JSON at line 1"):
        ann.read_vqa2(q, a)
    _write(q, {"questions": [{"image_id": 9, "question_id": 1}]})
    with pytest.raises(ValueError, match=r"questions\[0\]: missing field 'question'"):
        ann.read_vqa2(q)
    _write(q, {"questions": [{"image_id": 9, "question": "?", "question_id": 1}]})
    with pytest.raises(ValueError, match="question 1 has no entry in"):
        ann.read_vqa2(q, a)


def test_coco_and_karpathy_readers(tmp_path):
    coco = _write(tmp_path / "captions_val2014.json", {
        "images": [{"id": 391895, "file_name": "COCO_val2014_000000391895.jpg", "width": 640, "height": 360}],
        "annotations": [{"image_id": 391895, "id": 48, "caption": "A very clean bathroom "}]})
    rec, = ann.read_coco_captions(coco)
    assert (rec.id, rec.image_id, rec.text) == ("48", "391895", "A very clean bathroom")
    _write(coco, {"images": [], "annotations": [{"image_id": 1, "id": 2, "caption": "x"}]})
    with pytest.raises(ValueError, match=r"annotations\[0\]: image_id 1 is not in the file's images"):
        ann.read_coco_captions(coco)
    karpathy = _write(tmp_path / "dataset_coco.json", {"dataset": "coco", "images": [
        {"split": s, "cocoid": i, "filename": f"COCO_val2014_{i:012d}.jpg", "imgid": i,
         "sentences": [{"raw": f"caption {i}. ", "sentid": 10 * i, "imgid": i, "tokens": []}]}
        for i, s in enumerate(["train", "restval", "val", "test"])]})
    assert [r.image_id for r in ann.read_karpathy(karpathy, "train")] == ["0", "1"]     # restval joins train
    assert [r.text for r in ann.read_karpathy(karpathy, "test")] == ["caption 3."]


def test_cc_vizwiz_snli_mmimdb_errors(tmp_path):
    cc = _write(tmp_path / "cc.tsv", "a bus station\thttp://x/1.jpg\nno url here\n")
    with pytest.raises(ValueError, match=r"cc\.tsv:2: expected 'caption<TAB>url', got 1 column"):
        ann.read_conceptual_captions(cc)
    viz = _write(tmp_path / "val.json", {"image": "VizWiz_val_00000000.jpg"})
    with pytest.raises(ValueError, match="expected a JSON list"):
        ann.read_vizwiz(viz)
    _write(viz, [{"image": "VizWiz_val_00000000.jpg", "question": "What is it?",
                  "answers": [{"answer": "soup", "answer_confidence": "yes"}] * 10, "answer_type": "other"}])
    assert ann.read_vizwiz(viz)[0].image_id == "VizWiz_val_00000000"
    snli = _write(tmp_path / "snli_ve_dev.jsonl", json.dumps(
        {"Flickr30K_ID": "3416050480", "gold_label": "maybe", "pairID": "p", "sentence2": "s"}) + "\n")
    with pytest.raises(ValueError, match=r"snli_ve_dev\.jsonl:1: gold_label 'maybe'"):
        ann.read_snli_ve(snli)
    _write(snli, json.dumps({"gold_label": "neutral", "pairID": "p", "sentence2": "s"}) + "\n")
    with pytest.raises(ValueError, match="missing field 'Flikr30kID'"):
        ann.read_snli_ve(snli)
    root = tmp_path / "mmimdb"
    (root / "dataset").mkdir(parents=True)
    _write(root / "split.json", {"train": ["0075148"], "dev": [], "test": []})
    _write(root / "dataset" / "0075148.json", {"genres": ["Drama", "News"], "plot": ["short", "the longest plot"]})
    rec, = ann.read_mmimdb(root, "train")
    assert (rec.image_id, rec.text, rec.labels) == ("0075148", "the longest plot", ("Drama",))
    _write(root / "dataset" / "0075148.json", {"genres": ["Drama"]})
    with pytest.raises(ValueError, match=r"0075148\.json: missing field 'plot'"):
        ann.read_mmimdb(root, "train")


def test_image_keys_meet_across_annotation_and_feature_names():
    assert ann.image_key("COCO_train2014_000000000009.jpg", numeric=True) == "9"
    assert ann.image_key("9", numeric=True) == ann.image_key("9.npy", numeric=True) == "9"
    assert ann.image_key("0075148", numeric=False) == "0075148"                    # IMDb ids keep zeros
    assert ann.image_key("VizWiz_val_00000001.jpg", numeric=False) == "VizWiz_val_00000001"
    with pytest.raises(ValueError, match="does not end in a number"):
        ann.image_key("poster.jpg", numeric=True)


# --- feature files and prepare's checks ---------------------------------------------------
def test_cls_prob_with_and_without_background_and_box_normalisation():
    feats, boxes = np.ones((2, 4), np.float32), np.asarray([[0, 0, 320, 240], [64, 48, 640, 480]], np.float32)
    with_bg = np.asarray([[0.5, 0.2, 0.3], [0.1, 0.0, 0.9]], np.float32)          # background first
    rows = to_store_rows(ImageRegions("9", 640, 480, boxes, feats, with_bg, "f"), 3, 4, num_classes=2)
    np.testing.assert_allclose(rows["cls_prob"][:2], [[0.2, 0.3, 0.5], [0.0, 0.9, 0.1]])   # background last
    np.testing.assert_allclose(rows["boxes"][0], [0, 0, 0.5, 0.5, 0.25])
    assert rows["num_regions"] == 2 and not rows["features"][2].any()                     # padded
    no_bg = to_store_rows(ImageRegions("9", 640, 480, boxes, feats, with_bg[:, 1:], "f"), 3, 4, num_classes=2)
    np.testing.assert_allclose(no_bg["cls_prob"][:2, 2], 0)
    with pytest.raises(ValueError, match="cls_prob has 3 columns; expected 4 .* or 5"):
        to_store_rows(ImageRegions("9", 640, 480, boxes, feats, with_bg, "f.lmdb['9']"), 3, 4, num_classes=4)
    with pytest.raises(ValueError, match=r"f: features have shape \(2, 4\), expected \(N, 8\)"):
        to_store_rows(ImageRegions("9", 640, 480, boxes, feats, None, "f"), 3, 8, num_classes=2)


def _tsv(path, images):
    with open(path, "w", newline="") as f:
        for image_id, feats in images:
            n = len(feats)
            boxes = np.tile(np.float32([0, 0, 10, 10]), (n, 1))
            f.write("\t".join([str(image_id), "100", "50", str(n), base64.b64encode(boxes.tobytes()).decode(),
                               base64.b64encode(feats.astype(np.float32).tobytes()).decode()]) + "\r\n")
    return path


def test_bottom_up_tsv_reader(tmp_path):
    path = _tsv(tmp_path / "f.tsv", [(9, np.arange(6).reshape(2, 3))])
    img, = read_bottom_up_tsv(path)
    assert (img.name, img.width, img.height, img.features.shape, img.boxes.shape) == ("9", 100, 50, (2, 3), (2, 4))
    path.write_text("9\t100\t50\n")
    with pytest.raises(ValueError, match=r"f\.tsv:1: expected 6 tab-separated fields"):
        list(read_bottom_up_tsv(path))


def test_prepare_refuses_bad_input_and_leaves_nothing_behind(tmp_path):
    q, a = _vqa_files(tmp_path)
    out = tmp_path / "root"
    missing = _tsv(tmp_path / "other.tsv", [(8, np.ones((2, 3)))])                # not image 9
    with pytest.raises(ValueError, match=r"1 image\(s\) have no features .* first: image '9' of train record '9000'"):
        prepare("vqa2", {"train": [q, a]}, [missing], out, "vqa_d", num_classes=2)
    assert not out.exists() or not any(out.rglob("*.npy")) and not (out / "datasets").exists()
    widths = _tsv(tmp_path / "widths.tsv", [(9, np.ones((2, 3)))])
    _write(q, {"questions": [{"image_id": 9, "question": "What?", "question_id": 9000},
                             {"image_id": 10, "question": "Who?", "question_id": 9001}]})
    a_obj = json.loads(a.read_text())
    a_obj["annotations"].append({**a_obj["annotations"][0], "question_id": 9001, "image_id": 10})
    _write(a, a_obj)
    with open(widths, "a", newline="") as f:
        f.write("\t".join(["10", "100", "50", "1", base64.b64encode(np.zeros((1, 4), np.float32).tobytes()).decode(),
                           base64.b64encode(np.zeros((1, 5), np.float32).tobytes()).decode()]) + "\r\n")
    with pytest.raises(ValueError, match=r"widths\.tsv:2 \(image 10\): features have shape \(1, 5\), expected \(N, 3\)"):
        prepare("vqa2", {"train": [q, a]}, [widths], out, "vqa_d", num_classes=2)
    assert not (out / "datasets").exists() and not list(out.rglob("*.npy"))
    with pytest.raises(ValueError, match="unknown dataset kind 'vqa3'"):
        prepare("vqa3", {"train": [q]}, [widths], out, "x")


def test_mmf_lmdb_and_npy_folders_with_both_key_styles(tmp_path):
    import lmdb
    q, a = _vqa_files(tmp_path)
    item = {"features": np.ones((3, 4), np.float32), "bbox": np.zeros((3, 4), np.float32), "num_boxes": 3,
            "image_width": 640, "image_height": 480, "objects": np.zeros(3, np.int64), "cls_prob": None}
    env = lmdb.open(str(tmp_path / "f.lmdb"), map_size=1 << 24)
    with env.begin(write=True) as txn:
        txn.put(b"9", pickle.dumps({"feature_path": "9", **item}))                 # the short key style
        txn.put(b"keys", pickle.dumps([b"9"]))
    env.close()
    got = prepare("vqa2", {"train": [q, a]}, [tmp_path / "f.lmdb"], tmp_path / "r1", "vqa_d", num_classes=2)
    assert got["images"] == 1 and got["cls_prob"] is False
    folder = tmp_path / "npy"
    folder.mkdir()
    np.save(folder / "COCO_train2014_000000000009.npy", item["features"])
    np.save(folder / "COCO_train2014_000000000009_info.npy",
            {k: v for k, v in item.items() if k != "features"} | {"cls_prob": np.full((3, 3), 1 / 3, np.float32)},
            allow_pickle=True)
    prepare("vqa2", {"train": [q, a]}, [folder], tmp_path / "r2", "vqa_d", num_classes=2)
    store = np.load(tmp_path / "r2" / "stores" / "vqa_d" / "cls_prob.npy")
    np.testing.assert_allclose(store[0, :3].sum(1), 1)


def test_study_on_prepared_data_from_a_bert_folder_under_a_launcher(round_trip, tmp_path):
    """The real-data path end to end: a Study on a prepared root (world = its path), starting
    from a BERT folder rather than a BERT-stage run, each run launched as its own process
    (the paper profile launches them under torchrun; here the launcher is plain python)."""
    import sys

    from vlstudy.roots import open_data
    from vlstudy.real.prepare import install_tokenizer
    from vlstudy.registry import Registry
    from vlstudy.study import Recipe, Study
    from vlstudy.spec import RunSpec
    _, _, prepared, _, _, _ = round_trip
    reg = Registry(tmp_path / "runs")
    bert = RunSpec("bert", "bert", "corpus", world="smoke", model="tiny", init="random", steps=10, eval_every=5,
                   batch_size=16, max_text_len=24)
    reg.run(bert)
    install_tokenizer(open_data("smoke").tokenizer_dir, prepared.folder)
    recipe = Recipe(world=str(prepared.folder), model="tiny", bert_dir=str(reg.folder(bert) / "bert"),
                    launcher=sys.executable, batch_size=16, finetune_batch_size=16, pretrain_steps=10,
                    finetune_steps=10, evals_per_run=2, max_text_len=24, max_grad_norm=0, blocks=1)
    lines = []
    study = Study(recipe, reg, log=lines.append)
    grid = study.finetune_grid(["vilbert"], ["none", "vqa_p"], ["vqa_d"])
    assert len(grid) == 2 and grid["test_score"].between(0, 100).all()
    assert len(lines) == 3 and lines[-1].startswith("[run] 3/3 ")       # VQA-P pretraining, 2 finetunings
    direct = study.finetuning("vilbert", "vqa_d", "none")
    assert direct.parent is None and direct.start_from and direct.world == str(prepared.folder)
    assert reg.status(direct) == "finished" and direct.max_grad_norm == 0
    with pytest.raises(ValueError, match="neither a world preset"):
        open_data(str(tmp_path / "nowhere"))


def test_runs_on_a_prepared_root_keep_their_ids_when_other_datasets_are_added(round_trip):
    from vlstudy.spec import RunSpec
    _, official, prepared, manifest, _, _ = round_trip
    spec = RunSpec("finetune", "visual_bert", "vqa_d", world=str(prepared.folder), init="random")
    before = spec.id
    m = manifest["vizwiz"]
    prepare(m["kind"], {s: [official / p for p in ps] for s, ps in m["splits"].items()},
            [official / p for p in m["features"]], prepared.folder, "vizwiz_again", store=m["store"],
            max_regions=m["max_regions"], num_classes=m["num_classes"], log=lambda line: None)
    assert spec.id == before
    assert spec.replace(dataset="vizwiz_again").id != spec.replace(dataset="vizwiz").id   # the names differ


def test_vqa_answer_vocabulary_is_the_fields_3129_and_prepare_reports_what_falls_outside(tmp_path):
    from vlstudy.spec import RunSpec
    from vlstudy.stages import classifier_labels
    n = 3130                                   # one answer more than VQA 2.0's vocabulary holds

    def files(folder, answers):
        folder.mkdir()
        q = _write(folder / "q.json", {"questions": [{"image_id": 1 + k % 3, "question": f"q{k}?", "question_id": k}
                                                     for k in range(len(answers))]})
        a = _write(folder / "a.json", {"annotations": [
            {"question_id": k, "image_id": 1 + k % 3, "answer_type": "other",
             "answers": [{"answer": ans, "answer_id": j + 1} for j in range(10)]} for k, ans in enumerate(answers)]})
        return [q, a]
    train = files(tmp_path / "train", [f"a{k:04d}" for k in range(n)])        # ties: alphabetical, a3129 left out
    val = files(tmp_path / "val", ["a0000", "a0001", "a3129", "zebra"])
    feats = _tsv(tmp_path / "f.tsv", [(i, np.ones((2, 3))) for i in (1, 2, 3)])
    lines = []
    got = prepare("vqa2", {"train": train, "val": val}, [feats], tmp_path / "root", "vqa_d", num_classes=2,
                  log=lines.append)
    assert got["val_best_answer_out_of_vocabulary"] == 0.5
    assert "val: 50.0 % of questions' best answer outside the 3129-answer vocabulary" in lines[0]
    root = DataRoot(tmp_path / "root")
    vocab = root.answer_vocab("vqa_d")
    assert len(vocab) == 3129 and "a3129" not in vocab.index
    targets = vocab.targets(root.records("vqa_d", "val"))
    assert targets.sum(1).tolist() == [1.0, 1.0, 0.0, 0.0]                   # outside: scores 0 in training
    spec = RunSpec("finetune", "visual_bert", "vqa_d", world=str(tmp_path / "root"), init="random")
    assert len(classifier_labels(spec, root)) == 3129 and len(classifier_labels(spec.replace(answer_vocab=100), root)) == 100


def test_cc_features_keyed_by_bare_row_or_split_row_and_keys_that_do_not_meet(tmp_path):
    cc = _write(tmp_path / "train.tsv", "a tree\thttp://x/0.jpg\na dog\thttp://x/1.jpg\n")
    bare = _tsv(tmp_path / "bare.tsv", [(0, np.ones((2, 3))), (1, np.ones((2, 3)))])      # keyed 0, 1
    got = prepare("conceptual_captions", {"train": [cc]}, [bare], tmp_path / "r1", "cc", num_classes=2)
    assert got["images"] == 2
    assert json.loads((tmp_path / "r1/stores/cc/image_ids.json").read_text()) == ["train_00000000", "train_00000001"]
    with pytest.raises(ValueError, match=r"bare row number .* fit one split"):
        prepare("conceptual_captions", {"train": [cc], "val": [cc]}, [bare], tmp_path / "r2", "cc", num_classes=2)
    other = _tsv(tmp_path / "other.tsv", [("img_a", np.ones((2, 3))), ("img_b", np.ones((2, 3)))])
    with pytest.raises(ValueError, match=r"2 image\(s\) have no features.*keys like \['train_00000000', "
                                         r"'train_00000001'\]; the feature files name images like \['img_a', 'img_b'\]"):
        prepare("conceptual_captions", {"train": [cc]}, [other], tmp_path / "r3", "cc", num_classes=2)
