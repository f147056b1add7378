"""``vlstudy bench device``: what one accelerator does with the paper's models, in figures.

On a GPU: base-config VisualBERT and ViLBERT at the ``paper`` profile's per-GPU batch (its
batch over an 8-GPU node), 128 tokens and 100 regions of 2048 features, bf16 autocast —
a pretraining step, a finetuning step (VQA 2.0's 3,129 answers), a frozen-base step (the
head alone on the base's outputs) — each as samples/s, TFLOP/s, MFU against the device's
stated bf16 peak and peak memory; a 2-process DDP step when two GPUs are present; and the
GPU-hours of one 88k-update pretraining and finetuning run at that rate. On a CPU it runs a
reduced form (the small config, small batches, fp32, DDP over gloo) and says so: the
figures exercise the code, they say nothing of a GPU. Nothing is asserted.
"""
from __future__ import annotations

import os
import time

import torch

from .bench import _step_flops

# Stated dense bf16 tensor-core peaks, FLOP/s (vendor data sheets; SXM parts)
STATED_BF16_PEAK = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "L40S": 362e12, "A10": 125e12}
PAPER = {"pretrain_batch": 896, "finetune_batch": 1024, "updates": 88_000, "node_gpus": 8,
         "text_len": 128, "regions": 100, "feature_dim": 2048, "answers": 3129}


def _shape(reduced: bool) -> dict:
    if reduced:
        return {"config": "small", "batch": 8, "text_len": 24, "regions": 10, "feature_dim": None, "answers": 64,
                "precision": "fp32", "steps": 3}
    return {"config": "base", "batch": PAPER["pretrain_batch"] // PAPER["node_gpus"], "text_len": PAPER["text_len"],
            "regions": PAPER["regions"], "feature_dim": PAPER["feature_dim"], "answers": PAPER["answers"],
            "precision": "bf16", "steps": 10}


def _batch(cfg, shape: dict, device) -> dict:
    g = torch.Generator().manual_seed(0)
    b, t, r = shape["batch"], shape["text_len"], shape["regions"]
    batch = dict(input_ids=torch.randint(5, cfg.vocab_size, (b, t), generator=g),
                 attention_mask=torch.ones(b, t, dtype=torch.long), token_type_ids=torch.zeros(b, t, dtype=torch.long),
                 features=torch.randn(b, r, cfg.feature_dim, generator=g), boxes=torch.rand(b, r, 5, generator=g),
                 region_mask=torch.ones(b, r, dtype=torch.bool),
                 mlm_labels=torch.where(torch.rand(b, t, generator=g) < 0.15, torch.randint(5, cfg.vocab_size, (b, t),
                                                                                            generator=g), -100),
                 masked_regions=torch.rand(b, r, generator=g) < 0.15,
                 region_targets=torch.softmax(torch.randn(b, r, cfg.num_detector_classes, generator=g), -1))
    return {k: v.to(device) for k, v in batch.items()}


def _timed(step, steps: int, device) -> tuple[float, int]:
    """Seconds per step after warm-up, and the FLOPs of one step."""
    flops = _step_flops(step)
    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t) / steps, flops


def _steps(arch: str, cfg, shape: dict, device):
    """(name, batch size, step function) of the three kinds of step."""
    from .models import ForClassification, build_base, build_pretraining
    from .models.heads import task_output
    batch = _batch(cfg, shape, device)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids", "features", "boxes", "region_mask")}
    targets = torch.rand(shape["batch"], shape["answers"], device=device)
    pre = build_pretraining(arch, cfg).to(device).train()
    ft = ForClassification(build_base(arch, cfg), shape["answers"], "vqa").to(device).train()
    with torch.no_grad():
        pooled = ft.eval().pool(**inputs)
    ft.train()

    def step_of(model, loss, params):
        opt = torch.optim.AdamW(params, lr=1e-5)

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=shape["precision"] == "bf16"):
                out = loss()
            out.backward()
            opt.step()
        return step
    return [("pretraining", step_of(pre, lambda: pre(**batch)["loss"], pre.parameters())),
            ("finetuning", step_of(ft, lambda: ft(**inputs, targets=targets)["loss"], ft.parameters())),
            ("frozen base (head on cached outputs)",
             step_of(ft.classifier, lambda: task_output(ft.classifier(pooled), "vqa", targets)["loss"],
                    ft.classifier.parameters()))]


def bench_device(reduced: bool | None = None, log=print) -> list[dict]:
    from .models import model_config
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    reduced = device.type == "cpu" if reduced is None else reduced
    shape = _shape(reduced)
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"
    peak = next((p for k, p in STATED_BF16_PEAK.items() if k in name), None)
    if device.type == "cuda" and shape["precision"] == "bf16":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    log(f"device check on {name}" + (" — REDUCED FORM (small config, small batches, fp32): these figures "
                                     "exercise the code and say nothing of a GPU" if reduced else ""))
    rows = []
    for arch in ("visual_bert", "vilbert"):
        changes = {"feature_dim": shape["feature_dim"]} if shape["feature_dim"] else {}
        cfg = model_config(shape["config"], **changes)
        for kind, step in _steps(arch, cfg, shape, device):
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats()
            secs, flops = _timed(step, shape["steps"], device)
            row = {"model": arch, "step": kind, "batch": shape["batch"], "precision": shape["precision"],
                   "samples_per_s": round(shape["batch"] / secs, 1), "ms_per_step": round(1000 * secs, 1),
                   "tflop_per_s": round(flops / secs / 1e12, 4),
                   "mfu": round(flops / secs / peak, 3) if peak else None,
                   "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 2**30, 1) if device.type == "cuda" else None}
            if kind != "frozen base (head on cached outputs)" and not reduced:
                batch = PAPER["pretrain_batch"] if kind == "pretraining" else PAPER["finetune_batch"]
                row["gpu_hours_per_paper_run"] = round(PAPER["updates"] * batch / row["samples_per_s"] / 3600, 1)
            rows.append(row)
            log(f"  {arch:11s} {kind:38s} batch {shape['batch']:4d} {shape['precision']}: "
                f"{row['samples_per_s']:9.1f} samples/s {row['ms_per_step']:8.1f} ms/step "
                + (f"{1000 * row['tflop_per_s']:8.1f} GFLOP/s" if reduced else f"{row['tflop_per_s']:8.1f} TFLOP/s")
                + (f"  MFU {100 * row['mfu']:.1f} %" if row["mfu"] else "")
                + (f"  peak {row['peak_memory_gb']} GB" if row["peak_memory_gb"] is not None else "")
                + (f"  {row['gpu_hours_per_paper_run']} device-hours per 88k-update run at the paper batch"
                   if "gpu_hours_per_paper_run" in row else ""))
    rows += _ddp(shape, device, log)
    return rows


def _ddp(shape: dict, device, log) -> list[dict]:
    """A 2-process DDP pretraining step: NCCL on two GPUs, gloo on the CPU (reduced form)."""
    if device.type == "cuda" and torch.cuda.device_count() < 2:
        log("  DDP: not measured (one GPU)")
        return []
    import torch.multiprocessing as mp
    queue = mp.get_context("spawn").SimpleQueue()
    mp.spawn(_ddp_worker, args=(shape, device.type, queue), nprocs=2, join=True)
    secs = queue.get()
    row = {"model": "visual_bert", "step": "pretraining, 2-process DDP", "batch": 2 * shape["batch"],
           "precision": shape["precision"], "samples_per_s": round(2 * shape["batch"] / secs, 1),
           "ms_per_step": round(1000 * secs, 1)}
    log(f"  {'visual_bert':11s} {row['step']:38s} batch {row['batch']:4d} {shape['precision']}: "
        f"{row['samples_per_s']:9.1f} samples/s {row['ms_per_step']:8.1f} ms/step")
    return [row]


def _ddp_worker(rank: int, shape: dict, device_type: str, queue) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from .models import build_pretraining, model_config
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29517")
    dist.init_process_group("nccl" if device_type == "cuda" else "gloo", rank=rank, world_size=2)
    try:
        device = torch.device(device_type, rank) if device_type == "cuda" else torch.device("cpu")
        torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
        changes = {"feature_dim": shape["feature_dim"]} if shape["feature_dim"] else {}
        cfg = model_config(shape["config"], **changes)
        model = DistributedDataParallel(build_pretraining("visual_bert", cfg).to(device).train(),
                                        device_ids=[rank] if device_type == "cuda" else None,
                                        find_unused_parameters=True)   # MLM alone leaves the pooler out
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
        batch = _batch(cfg, shape, device)

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=shape["precision"] == "bf16"):
                loss = model(**batch)["loss"]
            loss.backward()
            opt.step()
        for _ in range(2):
            step()
        t = time.perf_counter()
        for _ in range(shape["steps"]):
            step()
        if device_type == "cuda":
            torch.cuda.synchronize()
        if rank == 0:
            queue.put((time.perf_counter() - t) / shape["steps"])
    finally:
        dist.destroy_process_group()
