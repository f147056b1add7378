"""Benchmarks that print figures (never asserted in tests: timings here are noisy)."""
from __future__ import annotations

import time

import torch

from .data.batching import VLCollator
from .world import open_world


def _draw(loader, batches: int) -> tuple[int, float]:
    """Draw ``batches`` batches (epochs over as needed): how many, and the seconds taken."""
    n, t = 0, time.perf_counter()
    while n < batches:
        for _ in loader:
            n += 1
            if n >= batches:
                break
    return n, time.perf_counter() - t


def bench_loader(preset: str = "small", dataset: str = "coco", batch_size: int = 64,
                 batches: int = 200, workers: int = 0) -> dict:
    """Samples/s of a shuffled DataLoader with token and region masking over one split."""
    root = open_world(preset)
    t = time.perf_counter()
    ds = root.split(dataset, "train")
    open_s = time.perf_counter() - t
    tok = root.tokenizer
    coll = VLCollator(ds, tok.mask_token_id, len(tok), 0.15, 0.15)
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, collate_fn=coll,
                                         num_workers=workers, drop_last=True)
    n, secs = _draw(loader, batches)
    res = {"dataset": dataset, "examples": len(ds), "open_seconds": round(open_s, 2),
           "batches": n, "batch_size": batch_size,
           "samples_per_second": round(n * batch_size / secs), "workers": workers}
    print(f"loader {preset}/{dataset}: opened {len(ds)} examples in {open_s:.2f} s; "
          f"{res['samples_per_second']} samples/s ({n} batches of {batch_size}, "
          f"{workers} workers, token + region masking)")
    return res


def bench_loader_real_shape(images: int = 256, batch_size: int = 64, batches: int = 40,
                            workers: tuple[int, ...] = (0, 2)) -> list[dict]:
    """Samples/s of the finetuning loader on a store of the real shape (100 regions x 2048
    features + 1601 classes per image, memory-mapped; ``images`` of them, VQA questions on
    each), with each number of loader workers: what a GPU step must not wait for."""
    import tempfile
    from pathlib import Path

    from .data.root import DataRoot
    with tempfile.TemporaryDirectory(prefix="vlstudy-bench-loader-") as work:
        _bench_prepare(Path(work), images, 100, 2048, 5, "npy")
        root = DataRoot(Path(work) / "root", tokenizer_dir=open_world("smoke").tokenizer_dir)
        ds = root.split("vqa", "train", max_text_len=128)
        coll = VLCollator(ds, root.tokenizer.mask_token_id, len(root.tokenizer), 0.0, 0.0)
        rows = []
        for w in workers:
            loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=True, collate_fn=coll,
                                                 num_workers=w, drop_last=True, persistent_workers=w > 0,
                                                 pin_memory=torch.cuda.is_available())
            n, secs = _draw(loader, batches)
            rows.append({"workers": w, "batch_size": batch_size, "samples_per_second": round(n * batch_size / secs)})
            print(f"loader, real shape ({images} images x 100 regions x 2048 features + 1601 classes, memory-mapped; "
                  f"{len(ds)} questions): {rows[-1]['samples_per_second']} samples/s with {w} workers "
                  f"(batches of {batch_size})")
        return rows


def matmul_flops_per_second(n: int = 1024, seconds: float = 1.0) -> float:
    """The machine's measured fp32 matmul rate (a large square matmul, all torch threads)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    reps, t = 0, time.perf_counter()
    while time.perf_counter() - t < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t)


def _step_flops(step) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def _time_steps(step, steps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t) / steps


def bench_models(config: str = "small", batch_size: int = 64, text_len: int = 24, regions: int = 10,
                 steps: int = 20) -> list[dict]:
    """Seconds per pretraining step (forward + backward + AdamW) of our two models and of
    Hugging Face's ``VisualBertForPreTraining`` at the same size, on the same batch."""
    from .models import build_pretraining, model_config

    cfg = model_config(config, dropout=0.0, attention_dropout=0.0)
    g = torch.Generator().manual_seed(0)
    batch = dict(input_ids=torch.randint(5, cfg.vocab_size, (batch_size, text_len), generator=g),
                 attention_mask=torch.ones(batch_size, text_len, dtype=torch.long),
                 token_type_ids=torch.zeros(batch_size, text_len, dtype=torch.long),
                 features=torch.randn(batch_size, regions, cfg.feature_dim, generator=g),
                 boxes=torch.rand(batch_size, regions, 5, generator=g),
                 region_mask=torch.ones(batch_size, regions, dtype=torch.bool))
    labels = torch.where(torch.rand(batch_size, text_len, generator=g) < 0.15, batch["input_ids"], -100)
    masked = torch.rand(batch_size, regions, generator=g) < 0.15
    targets = torch.softmax(torch.randn(batch_size, regions, cfg.num_detector_classes, generator=g), -1)

    def ours(arch):
        model = build_pretraining(arch, cfg).train()
        return model, lambda: model(**batch, mlm_labels=labels, masked_regions=masked,
                                    region_targets=targets)["loss"]

    def hugging_face():
        from transformers import VisualBertConfig, VisualBertForPreTraining
        hcfg = VisualBertConfig(vocab_size=cfg.vocab_size, hidden_size=cfg.hidden,
                                num_hidden_layers=cfg.layers, num_attention_heads=cfg.heads,
                                intermediate_size=cfg.inner, max_position_embeddings=cfg.max_positions,
                                visual_embedding_dim=cfg.feature_dim, pad_token_id=0, hidden_dropout_prob=0.0,
                                attention_probs_dropout_prob=0.0, hidden_act="gelu")
        model = VisualBertForPreTraining(hcfg).train()
        hf_labels = torch.cat([labels, torch.full((batch_size, regions), -100)], 1)
        return model, lambda: model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                    token_type_ids=batch["token_type_ids"], visual_embeds=batch["features"],
                                    visual_attention_mask=batch["region_mask"].long(),
                                    visual_token_type_ids=torch.zeros(batch_size, regions, dtype=torch.long),
                                    labels=hf_labels).loss

    peak = matmul_flops_per_second()
    rows = []
    for name, (model, loss_fn) in (("vlstudy VisualBERT", ours("visual_bert")),
                                   ("vlstudy ViLBERT", ours("vilbert")),
                                   ("HF VisualBertForPreTraining", hugging_face())):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step():
            opt.zero_grad(set_to_none=True)
            loss_fn().backward()
            opt.step()
        flops = _step_flops(step)
        secs = _time_steps(step, steps)
        rows.append({"model": name, "params_M": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
                     "samples_per_s": round(batch_size / secs, 1), "ms_per_step": round(1000 * secs, 1),
                     "gflop_per_step": round(flops / 1e9, 2),
                     "fraction_of_matmul_peak": round(flops / secs / peak, 3)})
    hf = rows[-1]["samples_per_s"]
    print(f"config {config}, batch {batch_size} x ({text_len} tokens + {regions} regions), "
          f"{torch.get_num_threads()} threads; measured matmul peak {peak / 1e9:.1f} GFLOP/s")
    for r in rows:
        print(f"  {r['model']:28s} {r['params_M']:6.2f}M  {r['samples_per_s']:8.1f} samples/s  "
              f"{r['ms_per_step']:7.1f} ms/step  {r['gflop_per_step']:6.2f} GFLOP/step  "
              f"{100 * r['fraction_of_matmul_peak']:5.1f} % of peak  ours/HF {r['samples_per_s'] / hf:.2f}")
    return rows


def bench_prepare(images: int = 500, regions: int = 100, dim: int = 2048, questions_per_image: int = 5,
                  form: str = "lmdb") -> dict:
    """``vlstudy prepare`` throughput on generated files of a realistic shape: VQA 2.0 JSON for
    ``images`` COCO images and their region features (``regions`` × ``dim`` float32 with
    1601-column ``cls_prob``) in ``form`` (lmdb, tsv or npy). Prints records/s and MB/s."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory(prefix="vlstudy-bench-prepare-") as work:
        return _bench_prepare(Path(work), images, regions, dim, questions_per_image, form)


def _bench_prepare(work, images, regions, dim, questions_per_image, form) -> dict:
    import json
    from pathlib import Path

    import numpy as np

    from .real.export import write_mmf_lmdb, write_npy_folder, write_bottom_up_tsv
    from .real.prepare import prepare
    rng = np.random.default_rng(0)
    names = [f"COCO_train2014_{i:012d}" for i in range(1, images + 1)]
    cls = rng.random((regions, 1601), dtype=np.float32)
    items = [{"features": rng.standard_normal((regions, dim), dtype=np.float32),
              "bbox": np.tile(np.float32([10, 20, 300, 200]), (regions, 1)), "cls_prob": cls / cls.sum(1, keepdims=True),
              "num_boxes": regions, "image_width": 640, "image_height": 480} for _ in names]
    t = time.perf_counter()
    features = {"lmdb": work / "features.lmdb", "tsv": work / "features.tsv", "npy": work / "features"}[form]
    {"lmdb": write_mmf_lmdb, "tsv": write_bottom_up_tsv, "npy": write_npy_folder}[form](features, names, items)
    write_s = time.perf_counter() - t
    qs, anns = [], []
    for i in range(1, images + 1):
        for k in range(questions_per_image):
            qs.append({"image_id": i, "question": "what colour is the dog?", "question_id": i * 1000 + k})
            anns.append({"question_id": i * 1000 + k, "image_id": i, "answer_type": "other",
                         "answers": [{"answer": "brown", "answer_confidence": "yes", "answer_id": j + 1}
                                     for j in range(10)]})
    (work / "q.json").write_text(json.dumps({"questions": qs}))
    (work / "a.json").write_text(json.dumps({"annotations": anns}))
    summary = prepare("vqa2", {"train": [work / "q.json", work / "a.json"]}, [features], work / "root",
                      "vqa", max_regions=regions, log=lambda line: None)
    mb_in = sum(f.stat().st_size for f in Path(features).rglob("*") if f.is_file()) / 2**20 \
        if Path(features).is_dir() else Path(features).stat().st_size / 2**20
    print(f"prepare vqa2 + {form}: {summary['train_records']} records, {images} images x {regions} regions x "
          f"{dim} features ({mb_in:.0f} MB of input, written in {write_s:.1f} s) → {summary['seconds']:.1f} s: "
          f"{summary['records_per_second']} records/s, {summary['feature_mb_per_second']} MB/s of store written")
    return {**summary, "input_mb": round(mb_in, 1), "form": form}
