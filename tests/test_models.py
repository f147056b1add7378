"""Models on the tiny config: shapes, HF parity, layer order, BERT loading, losses, gradients."""
import math

import pytest
import torch

from vlstudy.cli import main
from vlstudy.models import ForClassification, build_base, build_pretraining, model_config
from vlstudy.models.init import bert_key_map, load_bert
from vlstudy.models.vilbert import layer_schedule
from vlstudy.objectives import mlm_loss, region_kl_loss

CFG = model_config("tiny")
B, T, R = 3, 7, 5
ARCHS = ("visual_bert", "vilbert")


def make_batch(seed=0, masked_regions=True):
    g = torch.Generator().manual_seed(seed)
    mask = torch.ones(B, T, dtype=torch.long)
    mask[0, 5:] = 0
    regions = torch.ones(B, R, dtype=torch.bool)
    regions[1, 3:] = False
    batch = dict(input_ids=torch.randint(5, CFG.vocab_size, (B, T), generator=g), attention_mask=mask,
                 token_type_ids=torch.zeros(B, T, dtype=torch.long),
                 features=torch.randn(B, R, CFG.feature_dim, generator=g), boxes=torch.rand(B, R, 5, generator=g),
                 region_mask=regions)
    labels = torch.full((B, T), -100)
    labels[:, 1:3] = batch["input_ids"][:, 1:3]
    batch["mlm_labels"] = labels
    batch["masked_regions"] = (torch.rand(B, R, generator=g) < 0.5) & regions if masked_regions \
        else torch.zeros(B, R, dtype=torch.bool)
    batch["region_targets"] = torch.softmax(torch.randn(B, R, CFG.num_detector_classes, generator=g), -1)
    return batch


@pytest.mark.parametrize("arch", ARCHS)
def test_pretraining_heads_shapes(arch):
    batch = make_batch()
    out = build_pretraining(arch, CFG)(**batch)
    assert out["mlm_logits"].shape == ((batch["mlm_labels"] != -100).sum(), CFG.vocab_size)
    del batch["mlm_labels"]
    assert build_pretraining(arch, CFG)(**batch)["mlm_logits"].shape == (B, T, CFG.vocab_size)
    if arch == "vilbert":
        assert out["region_logits"].shape == (B, R, CFG.num_detector_classes)
        assert torch.isclose(out["loss"], out["mlm_loss"] + out["region_loss"])
    else:
        assert "region_logits" not in out and torch.equal(out["loss"], out["mlm_loss"])


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("task,labels", [("vqa", 11), ("vizwiz", 6), ("snli_ve", 3), ("mmimdb", 23)])
def test_classifier_shapes_and_losses(arch, task, labels):
    model = ForClassification(build_base(arch, CFG), labels, task)
    targets = {"vqa": torch.rand(B, labels), "vizwiz": torch.rand(B, labels),
               "snli_ve": torch.tensor([0, 2, 1]), "mmimdb": (torch.rand(B, labels) > 0.7).float()}[task]
    out = model(**make_batch(), targets=targets)
    assert out["logits"].shape == (B, labels)
    assert out["loss"].ndim == 0 and torch.isfinite(out["loss"])


def test_tied_mlm_decoder():
    m = build_pretraining("visual_bert", CFG).eval()
    b = make_batch()
    del b["mlm_labels"]
    out = m(**b)
    enc = m.base(*(b[k] for k in ("input_ids", "attention_mask", "token_type_ids", "features", "boxes",
                                  "region_mask")))
    expected = m.mlm.transform(enc.text) @ m.base.embeddings.word_embeddings.weight.T + m.mlm.bias
    torch.testing.assert_close(out["mlm_logits"], expected)
    assert not any("decoder" in k for k in m.state_dict())      # each tensor stored once


def test_visual_bert_matches_hugging_face():
    hf = pytest.importorskip("transformers.models.visual_bert.modeling_visual_bert")
    from transformers import VisualBertConfig
    ours = build_base("visual_bert", CFG).eval()
    hcfg = VisualBertConfig(vocab_size=CFG.vocab_size, hidden_size=CFG.hidden, num_hidden_layers=CFG.layers,
                            num_attention_heads=CFG.heads, intermediate_size=CFG.inner,
                            max_position_embeddings=CFG.max_positions, type_vocab_size=CFG.type_vocab,
                            visual_embedding_dim=CFG.feature_dim, layer_norm_eps=CFG.layer_norm_eps,
                            pad_token_id=0, hidden_act="gelu")
    theirs = hf.VisualBertModel(hcfg).eval()
    mapping = {k: v for k, v in bert_key_map(ours).items()}
    mapping.update({"visual_embeddings.projection.weight": "embeddings.visual_projection.weight",
                    "visual_embeddings.projection.bias": "embeddings.visual_projection.bias",
                    "visual_embeddings.token_type_embeddings_visual.weight":
                        "embeddings.visual_token_type_embeddings.weight",
                    "visual_embeddings.position_embeddings_visual.weight":
                        "embeddings.visual_position_embeddings.weight"})
    ours_params = dict(ours.named_parameters())
    assert set(mapping) == set(ours_params)                    # every weight has a counterpart
    state = theirs.state_dict()
    for o, t in mapping.items():
        state[t] = ours_params[o].detach().clone()
    theirs.load_state_dict(state)
    b = make_batch()
    with torch.no_grad():
        mine = ours(b["input_ids"], b["attention_mask"], b["token_type_ids"], b["features"], b["boxes"],
                    b["region_mask"])
        ref = theirs(input_ids=b["input_ids"], attention_mask=b["attention_mask"],
                     token_type_ids=b["token_type_ids"], visual_embeds=b["features"],
                     visual_attention_mask=b["region_mask"].long(),
                     visual_token_type_ids=torch.zeros(B, R, dtype=torch.long))
    joint = torch.cat([mine.text, mine.image], 1)
    valid = torch.cat([b["attention_mask"].bool(), b["region_mask"]], 1)
    torch.testing.assert_close(joint[valid], ref.last_hidden_state[valid], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mine.pooled, ref.pooler_output, atol=1e-5, rtol=1e-5)


def test_vilbert_layer_order():
    base = layer_schedule(model_config("base"))
    first_co = base.index(("co", 0))
    assert base[:first_co] == [("text", i) for i in range(6)]      # L0..L5 before the first block
    assert base[first_co + 1:first_co + 3] == [("text", 6), ("visual", 0)]
    assert base[-2:] == [("text", 11), ("visual", 5)]
    assert sum(s == "co" for s, _ in base) == 6
    # and the forward pass runs the blocks in that order
    model, calls = build_base("vilbert", CFG), []
    for name, mods in (("text", model.layers), ("visual", model.v_layers), ("co", model.c_layers)):
        for i, m in enumerate(mods):
            m.register_forward_hook(lambda *_, key=(name, i): calls.append(key))
    b = make_batch()
    model(b["input_ids"], b["attention_mask"], b["token_type_ids"], b["features"], b["boxes"], b["region_mask"])
    assert calls == layer_schedule(CFG) == [("text", 0), ("co", 0), ("text", 1), ("visual", 0), ("co", 1),
                                            ("text", 2), ("visual", 1)]


def test_bad_coattention_ids():
    with pytest.raises(ValueError, match="exceed"):
        model_config("tiny", t_biattention_id=(1, 5))
    with pytest.raises(ValueError, match="unknown model setting"):
        model_config("tiny", hiddens=3)


def tiny_bert(tmp_path, hidden=CFG.hidden):
    from transformers import BertConfig, BertForPreTraining
    torch.manual_seed(0)
    bert = BertForPreTraining(BertConfig(vocab_size=CFG.vocab_size, hidden_size=hidden,
                                         num_hidden_layers=CFG.layers, num_attention_heads=CFG.heads,
                                         intermediate_size=CFG.inner, max_position_embeddings=CFG.max_positions))
    bert.save_pretrained(tmp_path)
    return {k.removeprefix("bert."): v for k, v in bert.state_dict().items()}


@pytest.mark.parametrize("arch", ARCHS)
def test_load_bert(tmp_path, arch):
    state = tiny_bert(tmp_path)
    model = build_pretraining(arch, CFG)
    report = load_bert(model, tmp_path)
    params = dict(model.named_parameters())
    for ours, theirs in bert_key_map(model).items():
        assert torch.equal(params[ours], state[theirs]), ours
    expected = 5 + 16 * CFG.layers + 5 + (2 if arch == "visual_bert" else 0)   # + MLM head, + pooler
    assert len(report.loaded) == expected
    assert "cls.seq_relationship.weight" in report.unused
    assert all(not k.startswith("base.layers.") for k in report.new)          # every text layer loaded
    assert any(k.startswith("base.region_embeddings") or k.startswith("base.visual_embeddings")
               for k in report.new)
    if arch == "visual_bert":                                                # special visual init
        assert torch.equal(model.base.visual_embeddings.position_embeddings_visual.weight,
                           state["embeddings.position_embeddings.weight"])


def test_load_bert_shape_mismatch_names_the_weight(tmp_path):
    tiny_bert(tmp_path, hidden=48)
    with pytest.raises(ValueError, match=r"embeddings.word_embeddings.weight has shape \(99, 48\), but "
                                         r"the model's base.embeddings.word_embeddings.weight needs \(99, 32\)"):
        load_bert(build_pretraining("visual_bert", CFG), tmp_path)
    with pytest.raises(FileNotFoundError, match="no BERT weights"):
        load_bert(build_pretraining("visual_bert", CFG), tmp_path / "nothing")


@pytest.mark.parametrize("arch", ARCHS)
def test_losses_finite_with_nothing_masked(arch):
    b = make_batch(masked_regions=False)
    b["mlm_labels"][:] = -100
    out = build_pretraining(arch, CFG)(**b)
    assert torch.isfinite(out["loss"]) and out["loss"] == 0
    out["loss"].backward()


def test_region_kl_by_hand():
    logits = torch.tensor([[[0.0, math.log(3.0)], [5.0, 1.0]]])          # softmax → (0.25, 0.75)
    target = torch.tensor([[[0.5, 0.5], [1.0, 0.0]]])
    masked = torch.tensor([[True, False]])
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert region_kl_loss(logits, target, masked).item() == pytest.approx(expected)
    assert mlm_loss(torch.zeros(1, 2, 4), torch.tensor([[1, -100]])).item() == pytest.approx(math.log(4))


@pytest.mark.parametrize("arch", ARCHS)
def test_gradients_reach_every_learning_parameter(arch):
    pre = build_pretraining(arch, CFG)
    pre(**make_batch())["loss"].backward()
    unused_in_pretraining = ("pooler",)         # poolers serve the task heads only
    for name, p in pre.named_parameters():
        if any(u in name for u in unused_in_pretraining):
            assert p.grad is None, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
    cls = ForClassification(build_base(arch, CFG), 4, "vqa")
    cls(**make_batch(), targets=torch.rand(B, 4))["loss"].backward()
    for name, p in cls.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_vqa_pooling_reads_each_examples_last_question_token():
    """MMF's VisualBERT ``pooler_strategy: vqa``: the token before the final [SEP], per example,
    so extra padding (a longer example in the batch) changes nothing."""
    from vlstudy.tasks import get
    assert get("vqa").pooling("visual_bert") == "vqa" and get("vizwiz").pooling("visual_bert") == "vqa"
    assert get("vqa").pooling("vilbert") == "default" and get("snli_ve").pooling("visual_bert") == "default"
    torch.manual_seed(0)
    model = ForClassification(build_base("visual_bert", CFG), 4, "vqa", pooling="vqa").eval()
    batch = {k: v for k, v in make_batch().items() if k in ("input_ids", "attention_mask", "token_type_ids",
                                                          "features", "boxes", "region_mask")}
    together = model(**batch)["logits"]
    alone = model(**{k: v[:1, :5] if v.dim() == 2 and k != "region_mask" else v[:1] for k, v in batch.items()})
    assert torch.allclose(together[:1], alone["logits"], atol=1e-5)
    with pytest.raises(ValueError, match="pooling"):
        ForClassification(build_base("visual_bert", CFG), 4, "vqa", pooling="cls")

def test_models_command_counts_base(capsys):
    assert main(["models", "--config", "base"]) == 0
    out = capsys.readouterr().out
    pct = [float(line.split("; ")[1].split(" %")[0]) for line in out.splitlines() if "paper:" in line]
    assert len(pct) == 2 and all(abs(p) < 5 for p in pct), out


# --- MMF checkpoints (the paper's released weights) -----------------------------------------
def _mmf_state(arch, cfg, classifier_labels=None):
    """An MMF-layout state dict written from the key list and shapes of MMF's modules
    (MMF 1.0.0rc10's ``visual_bert.py`` / ``vilbert.py``), independently of our key map."""
    g = torch.Generator().manual_seed(0)
    H, V, P, F_, I = cfg.hidden, cfg.vocab_size, cfg.max_positions, cfg.feature_dim, cfg.inner
    Vh, Vi, Bi, C = cfg.v_hidden, cfg.v_inner, cfg.bi_hidden, cfg.num_detector_classes
    shapes = {}

    def lin(name, out, inp):
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (out, inp), (out,)

    def norm(name, n):
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (n,), (n,)

    def layer(prefix, h, inner):
        for m in ("query", "key", "value"):
            lin(f"{prefix}.attention.self.{m}", h, h)
        lin(f"{prefix}.attention.output.dense", h, h); norm(f"{prefix}.attention.output.LayerNorm", h)  # noqa: E702
        lin(f"{prefix}.intermediate.dense", inner, h); lin(f"{prefix}.output.dense", h, inner)  # noqa: E702
        norm(f"{prefix}.output.LayerNorm", h)

    b = "model.bert"
    shapes.update({f"{b}.embeddings.word_embeddings.weight": (V, H), f"{b}.embeddings.position_embeddings.weight": (P, H),
                   f"{b}.embeddings.token_type_embeddings.weight": (2, H)})
    norm(f"{b}.embeddings.LayerNorm", H)
    for i in range(cfg.layers):
        layer(f"{b}.encoder.layer.{i}", H, I)
    shapes["model.cls.predictions.bias"] = (V,)
    lin("model.cls.predictions.transform.dense", H, H); norm("model.cls.predictions.transform.LayerNorm", H)  # noqa: E702
    shapes["model.cls.predictions.decoder.weight"] = (V, H)
    if arch == "visual_bert":
        shapes[f"{b}.embeddings.token_type_embeddings_visual.weight"] = (2, H)
        shapes[f"{b}.embeddings.position_embeddings_visual.weight"] = (P, H)
        lin(f"{b}.embeddings.projection", H, F_); lin(f"{b}.pooler.dense", H, H)  # noqa: E702
        lin("model.cls.seq_relationship", 2, H)
        pooled = H
    else:
        lin(f"{b}.v_embeddings.image_embeddings", Vh, F_); lin(f"{b}.v_embeddings.image_location_embeddings", Vh, 5)  # noqa: E702
        norm(f"{b}.v_embeddings.LayerNorm", Vh)
        for i in range(cfg.v_layers):
            layer(f"{b}.encoder.v_layer.{i}", Vh, Vi)
        for k in range(len(cfg.v_biattention_id)):
            c = f"{b}.encoder.c_layer.{k}"
            for m in ("query1", "key1", "value1"):
                lin(f"{c}.biattention.{m}", Bi, Vh)
            for m in ("query2", "key2", "value2"):
                lin(f"{c}.biattention.{m}", Bi, H)
            lin(f"{c}.biOutput.dense1", Vh, Bi); norm(f"{c}.biOutput.LayerNorm1", Vh); lin(f"{c}.biOutput.q_dense1", Vh, Bi)  # noqa: E702
            lin(f"{c}.biOutput.dense2", H, Bi); norm(f"{c}.biOutput.LayerNorm2", H); lin(f"{c}.biOutput.q_dense2", H, Bi)  # noqa: E702
            lin(f"{c}.v_intermediate.dense", Vi, Vh); lin(f"{c}.v_output.dense", Vh, Vi); norm(f"{c}.v_output.LayerNorm", Vh)  # noqa: E702
            lin(f"{c}.t_intermediate.dense", I, H); lin(f"{c}.t_output.dense", H, I); norm(f"{c}.t_output.LayerNorm", H)  # noqa: E702
        lin(f"{b}.t_pooler.dense", Bi, H); lin(f"{b}.v_pooler.dense", Bi, Vh)  # noqa: E702
        lin("model.cls.bi_seq_relationship", 2, Bi)
        lin("model.cls.imagePredictions.transform.dense", Vh, Vh)
        norm("model.cls.imagePredictions.transform.LayerNorm", Vh)
        lin("model.cls.imagePredictions.decoder", C, Vh)
        pooled = Bi
    if classifier_labels:
        lin("model.classifier.0.dense", pooled, pooled); norm("model.classifier.0.LayerNorm", pooled)  # noqa: E702
        lin("model.classifier.1", classifier_labels, pooled)
    return {k: torch.randn(s, generator=g) for k, s in shapes.items()}


@pytest.mark.parametrize("arch", ["visual_bert", "vilbert"])
def test_mmf_checkpoint_loads_with_every_prefix_style(arch, tmp_path):
    from vlstudy.models import ForClassification, build_base, build_pretraining, model_config
    from vlstudy.models.mmf_checkpoint import load_mmf_checkpoint
    cfg = model_config("tiny")
    state = _mmf_state(arch, cfg)
    variants = {"zoo": state, "ddp": {f"module.{k}": v for k, v in state.items()},
                "old": {k.replace("model.bert.", "bert.bert.").replace("model.cls.", "bert.cls."): v
                        for k, v in state.items()}}
    for name, variant in variants.items():
        torch.save({"model": variant, "best_update": 11000}, tmp_path / f"{name}.ckpt")
        model = build_pretraining(arch, cfg)
        report = load_mmf_checkpoint(model, tmp_path / f"{name}.ckpt")
        assert report.new == [], (name, report.new)          # every weight of ours came from MMF
        assert set(report.unused) <= {"cls.predictions.decoder.weight", "cls.seq_relationship.weight",
                                      "cls.seq_relationship.bias", "cls.bi_seq_relationship.weight",
                                      "cls.bi_seq_relationship.bias"} | {k for k in report.unused if "q_dense" in k}
    sd = model.state_dict()
    torch.testing.assert_close(sd["base.embeddings.word_embeddings.weight"],
                               state["model.bert.embeddings.word_embeddings.weight"])
    if arch == "vilbert":       # text queries are MMF's query2, visual keys its key1; background moves last
        c = "model.bert.encoder.c_layer.0"
        torch.testing.assert_close(sd["base.c_layers.0.text_attention.self.query.weight"], state[f"{c}.biattention.query2.weight"])
        torch.testing.assert_close(sd["base.c_layers.0.text_attention.self.key.weight"], state[f"{c}.biattention.key1.weight"])
        torch.testing.assert_close(sd["base.c_layers.0.visual_attention.output.dense.weight"], state[f"{c}.biOutput.dense1.weight"])
        decoder = state["model.cls.imagePredictions.decoder.weight"]
        torch.testing.assert_close(sd["region.decoder.weight"], torch.cat([decoder[1:], decoder[:1]]))
    # a finetuning model from a pretraining checkpoint: the base loads, the classifier stays new
    clf = ForClassification(build_base(arch, cfg), 5, "vqa")
    report = load_mmf_checkpoint(clf, tmp_path / "zoo.ckpt")
    assert report.new and all(k.startswith("classifier.") for k in report.new)
    finetuned = _mmf_state(arch, cfg, classifier_labels=5)
    assert load_mmf_checkpoint(clf, finetuned).new                     # a classifier only on request
    assert load_mmf_checkpoint(clf, finetuned, classifier=True).new == []
    torch.testing.assert_close(clf.state_dict()["classifier.2.weight"], finetuned["model.classifier.1.weight"])


def test_mmf_checkpoint_errors_name_the_weight():
    from vlstudy.models import build_pretraining, model_config
    from vlstudy.models.mmf_checkpoint import load_mmf_checkpoint
    cfg = model_config("tiny")
    state = _mmf_state("visual_bert", cfg)
    model = build_pretraining("visual_bert", cfg)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    broken = dict(state)
    broken["model.bert.pooler.dense.weight"] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match=r"model\.bert\.pooler\.dense\.weight has shape \(3, 3\)"):
        load_mmf_checkpoint(model, broken)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())     # nothing half-loaded
    del broken["model.bert.pooler.dense.weight"]
    with pytest.raises(ValueError, match=r"lacks 1 weight\(s\) of the base, first: model\.bert\.pooler\.dense\.weight"):
        load_mmf_checkpoint(model, broken)


def test_mmf_checkpoint_with_pickled_objects_needs_trust(tmp_path):
    import argparse
    from vlstudy.models.mmf_checkpoint import read_mmf_checkpoint
    state = _mmf_state("visual_bert", model_config("tiny"))
    torch.save({"model": state, "config": argparse.Namespace(lr=5e-5)}, tmp_path / "zoo.pth")
    with pytest.raises(ValueError, match="trust_pickle=True"):
        read_mmf_checkpoint(tmp_path / "zoo.pth")
    assert set(read_mmf_checkpoint(tmp_path / "zoo.pth", trust_pickle=True)) == {k[len("model."):] for k in state}


def test_a_truncated_mmf_checkpoint_says_so(tmp_path):
    """Not "holds more than tensors": a download cut short is a different fault."""
    from vlstudy.models.mmf_checkpoint import read_mmf_checkpoint
    torch.save({"model": _mmf_state("visual_bert", model_config("tiny"))}, tmp_path / "full.pth")
    whole = (tmp_path / "full.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ValueError, match=r"cut\.pth: cannot be read as a torch checkpoint \([\d,]+ bytes; .*is it complete"):
        read_mmf_checkpoint(tmp_path / "cut.pth")


# --- reduced precision (the paper profile trains in bf16 on GPUs) --------------------------
# Relative tolerances of a bf16 step against fp32 (tiny config; measured: loss 3e-5, gradients
# 0.4-0.5 %; bf16 keeps 8 bits of mantissa, ~0.4 % per rounding)
BF16_LOSS_TOLERANCE, BF16_GRAD_TOLERANCE = 1e-3, 0.02


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("masked_regions", [True, False])
def test_a_bf16_step_matches_fp32_and_stays_finite(arch, masked_regions):
    """Under bf16 autocast (what Trainer's ``bf16=True`` runs) the pretraining loss and its
    gradients agree with fp32 within the tolerances, with no NaN when no region is masked."""
    torch.manual_seed(0)
    model = build_pretraining(arch, CFG).eval()        # no dropout: the same function both times
    batch = make_batch(masked_regions=masked_regions)
    full = model(**batch)["loss"]
    full.backward()
    full_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(**batch)
    assert out["loss"].dtype == torch.float32                  # the losses compute in fp32
    assert torch.isfinite(out["loss"]) and abs(out["loss"].item() - full.item()) <= BF16_LOSS_TOLERANCE * full.item()
    out["loss"].backward()
    for name, p in model.named_parameters():
        if name in full_grads:
            assert torch.isfinite(p.grad).all(), name
    total = torch.cat([g.flatten() for g in full_grads.values()])
    reduced = torch.cat([p.grad.flatten() for n, p in model.named_parameters() if n in full_grads])
    assert torch.linalg.norm(reduced - total) <= BF16_GRAD_TOLERANCE * torch.linalg.norm(total)


def test_device_check_runs_in_its_reduced_form_on_the_cpu(monkeypatch):
    """`vlstudy bench device` on a CPU: every kind of step and a 2-process DDP (gloo) step give
    figures (at the tiny config here; the command uses the small one). Nothing is timed."""
    from vlstudy import bench_device as bd
    monkeypatch.setattr(bd, "_shape", lambda reduced: {"config": "tiny", "batch": 2, "text_len": 6, "regions": 3,
                                                        "feature_dim": None, "answers": 5, "precision": "fp32",
                                                        "steps": 1})
    lines = []
    rows = bd.bench_device(log=lines.append)
    assert "REDUCED FORM" in lines[0]
    assert [(r["model"], r["step"]) for r in rows] == [
        (a, s) for a in ("visual_bert", "vilbert")
        for s in ("pretraining", "finetuning", "frozen base (head on cached outputs)")] + \
        [("visual_bert", "pretraining, 2-process DDP")]
    assert all(r["samples_per_s"] > 0 for r in rows) and not any("gpu_hours_per_paper_run" in r for r in rows)


def test_an_unknown_task_is_an_error_not_a_multilabel_f1():
    """Every task's loss, score and targets come from its record; a name without one fails
    where it is first used (the head), instead of being scored as something else."""
    from vlstudy import tasks
    with pytest.raises(ValueError, match=r"unknown task 'vqa2'; known: \['mmimdb', 'snli_ve', 'vizwiz', 'vqa'\]"):
        ForClassification(build_base("visual_bert", CFG), 4, "vqa2")
    with pytest.raises(ValueError, match="a pretraining set has no task"):
        tasks.get("pretraining")
    assert tasks.get("mmimdb").targets == "multi_hot" and tasks.get("vizwiz").results_key == "image"
