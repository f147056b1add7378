"""The ``vlstudy`` command: study, report, world, prepare, eval, train, runs, models, bench."""
from __future__ import annotations

import argparse
import json
import sys


def _study(args) -> int:
    from .runner import main_study
    return main_study(args)


def _report(args) -> int:
    from .report import build_report
    for kind, path in build_report(args.profile).items():
        print(f"{kind}: {path}")
    return 0


def _world_build(args) -> int:
    from .world import open_world
    root = open_world(args.preset, root=args.root,
                      progress=lambda part: print(f"building {part} ...", file=sys.stderr, flush=True))
    timings = json.loads((root.folder / "build_timings.json").read_text())
    print(f"world {args.preset}: {root.folder}")
    for name in root.datasets:
        info = root.info(name)
        print(f"  {name:9s} {info.task:11s} store={info.store:7s} " +
              " ".join(f"{s}={n}" for s, n in info.sizes.items()))
    print("build seconds: " + ", ".join(f"{k} {v}" for k, v in timings.items())
          + f" (total {sum(timings.values()):.1f})")
    return 0


def _world_export(args) -> int:
    from .real.export import export_world
    from .world import open_world
    manifest = export_world(open_world(args.preset), args.out)
    print(f"exported {', '.join(manifest)} of world {args.preset} to {args.out} "
          f"(read back with: vlstudy prepare --manifest {args.out}/manifest.json --out DIR)")
    return 0


def _prepare(args) -> int:
    from .real.export import prepare_exported
    from .real.prepare import prepare
    try:
        if args.tokenizer:
            from .real.prepare import install_tokenizer
            print(f"tokenizer: {install_tokenizer(args.tokenizer, args.out)}")
        if args.manifest:
            from pathlib import Path
            prepare_exported(Path(args.manifest).parent, args.out)
            return 0
        if args.tokenizer and not args.kind:
            return 0
        if not (args.kind and args.name and args.features):
            raise ValueError("give --kind, --name and --features (or --manifest)")
        splits = {s: paths for s, paths in (("train", args.train), ("val", args.val), ("test", args.test)) if paths}
        if not splits:
            raise ValueError("give the files of at least one split (--train, --val, --test)")
        prepare(args.kind, splits, args.features, args.out, args.name, store=args.store,
                max_regions=args.max_regions, num_classes=args.num_classes)
    except (ValueError, FileNotFoundError, KeyError) as e:
        print(f"vlstudy prepare: {e}", file=sys.stderr)
        return 2
    return 0


def _eval_vqa(args) -> int:
    from .metrics import evaluate_vqa_files
    try:
        res = evaluate_vqa_files(args.questions, args.annotations, args.results, args.version)
    except (ValueError, FileNotFoundError) as e:
        print(f"vlstudy eval vqa: {e}", file=sys.stderr)
        return 2
    print(f"Overall Accuracy is: {res['overall']:.2f} ({res['questions']} questions)")
    print("Per Answer Type Accuracy is the following:")
    for t, acc in res["perAnswerType"].items():
        print(f"{t} : {acc:.2f}")
    if args.json:
        print(json.dumps(res, indent=1))
    return 0


def _models(args) -> int:
    """Parameter counts on the meta device: no weights are allocated."""
    import torch

    from .models import ARCHITECTURES, build_base, build_pretraining, model_config
    cfg = model_config(args.config)
    paper = {"visual_bert": 110e6, "vilbert": 250e6}
    print(f"config {args.config}: text {cfg.layers} x {cfg.hidden}, visual {cfg.v_layers} x {cfg.v_hidden}, "
          f"co-attention {cfg.bi_hidden} (visual ids {list(cfg.v_biattention_id)}, "
          f"text ids {list(cfg.t_biattention_id)}), features {cfg.feature_dim}")
    with torch.device("meta"):
        for arch in ARCHITECTURES:
            base = sum(p.numel() for p in build_base(arch, cfg).parameters())
            heads = sum(p.numel() for p in build_pretraining(arch, cfg).parameters())
            line = f"{arch:12s} {base / 1e6:8.2f}M base, {heads / 1e6:8.2f}M with pretraining heads"
            if args.config == "base":
                line += f" (paper: {paper[arch] / 1e6:.0f}M; {100 * (heads / paper[arch] - 1):+.1f} %)"
            print(line)
    return 0


def _train(args) -> int:
    from .locks import RunBusy
    from .registry import Registry
    try:
        metrics = Registry(args.root).run_file(args.spec, progress=not args.quiet, wait=not args.no_wait)
    except ValueError as e:
        print(f"vlstudy train: {e}", file=sys.stderr)
        return 2
    except RunBusy as e:
        print(f"vlstudy train: {e}", file=sys.stderr)
        return 3
    print(json.dumps(metrics, indent=1))
    return 0


def _runs(args) -> int:
    import pandas as pd

    from .registry import Registry
    registry = Registry(args.root)
    table = registry.table()
    if args.status and not table.empty:
        table = table[table["status"].isin(args.status)]
    if table.empty:
        what = f"{'/'.join(args.status)} " if args.status else ""
        print(f"no {what}runs under {registry.root}")
        return 0
    print(", ".join(f"{n} {s}" for s, n in table["status"].value_counts().items()))
    with pd.option_context("display.width", 200, "display.max_rows", None, "display.max_colwidth", 48):
        print(table.to_string(index=False))
    return 0


def _bench_models(args) -> int:
    from .bench import bench_models
    bench_models(args.config, args.batch_size, steps=args.steps)
    return 0


def _bench_loader(args) -> int:
    from .bench import bench_loader, bench_loader_real_shape
    if args.real_shape:
        bench_loader_real_shape(args.real_shape, args.batch_size, args.batches, tuple(args.workers))
        return 0
    for workers in args.workers:
        bench_loader(args.preset, args.dataset, args.batch_size, args.batches, workers)
    return 0


def _bench_device(args) -> int:
    from .bench_device import bench_device
    bench_device(reduced=True if args.reduced else None)
    return 0


def _bench_prepare(args) -> int:
    from .bench import bench_prepare
    for form in args.form:
        bench_prepare(args.images, args.regions, args.dim, form=form)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vlstudy", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("study", help="run the study's notebooks under a parameter profile")
    s.add_argument("--profile", default="small", help="params/<profile>.yaml (smoke, small, full, paper)")
    s.add_argument("--only", action="append", metavar="NOTEBOOK",
                   help="run only this notebook (by name, e.g. world_tour); repeatable")
    s.add_argument("--reference", metavar="DIR",
                   help="also write the executed notebooks as nbval references into DIR")
    s.add_argument("--executor", choices=["local", "slurm", "submitit_local"],
                   help="where runs train (default: the profile's, else local): this machine's workers, "
                        "one SLURM job per run, or those jobs on this machine")
    s.add_argument("--partition", help="SLURM partition of the jobs")
    s.add_argument("--account", help="SLURM account the jobs are charged to")
    s.add_argument("--gpus-per-run", type=int, help="GPUs of one run's job (one node, one task per GPU)")
    s.add_argument("--time-limit", type=int, metavar="MINUTES",
                   help="a job's time limit; past it the job is requeued and resumes the run")
    s.set_defaults(fn=_study)

    rp = sub.add_parser("report", help="(re)write outputs/<profile>/report.{md,html} from what the notebooks wrote")
    rp.add_argument("--profile", default="small")
    rp.set_defaults(fn=_report)

    w = sub.add_parser("world", help="the embedded synthetic world")
    wsub = w.add_subparsers(dest="world_command", required=True)
    wb = wsub.add_parser("build", help="build (or find) a world and print its datasets and build times")
    wb.add_argument("--preset", default="small")
    wb.add_argument("--root", default=None, help="where worlds live (default outputs/data)")
    wb.set_defaults(fn=_world_build)

    wx = wsub.add_parser("export", help="write a world's datasets in the official formats (+ manifest.json)")
    wx.add_argument("--preset", default="smoke")
    wx.add_argument("--out", required=True)
    wx.set_defaults(fn=_world_export)

    from .real.prepare import KINDS
    pr = sub.add_parser("prepare", help="official annotation files + region features → a data root",
                        epilog="split files per kind: " + "; ".join(f"{k}: {v.files}" for k, v in KINDS.items()))
    pr.add_argument("--kind", choices=sorted(KINDS))
    pr.add_argument("--name", help="the dataset's name in the data root (e.g. vqa_d)")
    pr.add_argument("--train", nargs="+", metavar="FILE")
    pr.add_argument("--val", nargs="+", metavar="FILE", help="validation (the release's val or dev)")
    pr.add_argument("--test", nargs="+", metavar="FILE")
    pr.add_argument("--features", nargs="+", metavar="PATH",
                    help="bottom-up TSV (*.tsv), MMF LMDB (*.lmdb) or a folder of MMF .npy + _info.npy")
    pr.add_argument("--store", help="feature store name (default: --name); shared by datasets of one image set")
    pr.add_argument("--max-regions", type=int, default=100)
    pr.add_argument("--num-classes", type=int, default=1600,
                    help="detector classes without background (cls_prob may have this many columns or one more)")
    pr.add_argument("--manifest", help="prepare everything a `world export` wrote")
    pr.add_argument("--tokenizer", metavar="DIR", help="copy this BERT tokenizer (e.g. bert-base-uncased) into the root")
    pr.add_argument("--out", required=True, help="the data root to write into")
    pr.set_defaults(fn=_prepare)

    e = sub.add_parser("eval", help="score results files in the official formats")
    esub = e.add_subparsers(dest="eval_command", required=True)
    ev = esub.add_parser("vqa", help="VQA 2.0 accuracy, as the official vqaEval.py")
    ev.add_argument("--questions", required=True)
    ev.add_argument("--annotations", required=True)
    ev.add_argument("--results", required=True)
    ev.add_argument("--version", default="official", choices=["official", "legacy"],
                    help="official = the 2021 evaluator; legacy = the pre-2021 one")
    ev.add_argument("--json", action="store_true", help="also print every breakdown as JSON")
    ev.set_defaults(fn=_eval_vqa)

    t = sub.add_parser("train", help="train one run from its spec (JSON file or string); "
                                     "under torchrun it trains with DDP")
    t.add_argument("--spec", required=True, help="RunSpec fields as JSON, or a file holding them")
    t.add_argument("--root", default=None, help="registry folder (default outputs/runs)")
    t.add_argument("--quiet", action="store_true", help="no per-step log lines")
    t.add_argument("--no-wait", action="store_true",
                   help="if another process is training this run, say who and exit (3) instead of waiting")
    t.set_defaults(fn=_train)

    r = sub.add_parser("runs", help="the runs in the registry: training, waiting, failed or finished, "
                                    "headline metric, and where each one's log is")
    r.add_argument("--root", default=None, help="registry folder (default outputs/runs)")
    r.add_argument("--status", action="append", choices=["finished", "training", "waiting", "failed",
                                                         "unfinished"], help="only runs of this status; repeatable")
    r.set_defaults(fn=_runs)

    m = sub.add_parser("models", help="parameter counts of both models for a config")
    m.add_argument("--config", default="base", help="tiny, small or base")
    m.set_defaults(fn=_models)

    b = sub.add_parser("bench", help="benchmarks that print figures")
    bsub = b.add_subparsers(dest="bench_command", required=True)
    bl = bsub.add_parser("loader", help="data loader throughput with masking (samples/s)")
    bl.add_argument("--preset", default="small")
    bl.add_argument("--dataset", default="coco")
    bl.add_argument("--batch-size", type=int, default=64)
    bl.add_argument("--batches", type=int, default=200)
    bl.add_argument("--workers", type=int, nargs="+", default=[0])
    bl.add_argument("--real-shape", type=int, metavar="IMAGES", default=None,
                    help="instead of a world preset: a store of IMAGES images of the real shape "
                         "(100 x 2048 features + 1601 classes, memory-mapped)")
    bl.set_defaults(fn=_bench_loader)
    bm = bsub.add_parser("models", help="pretraining step time of both models and of HF's VisualBERT")
    bm.add_argument("--config", default="small")
    bm.add_argument("--batch-size", type=int, default=64)
    bm.add_argument("--steps", type=int, default=20)
    bm.set_defaults(fn=lambda a: _bench_models(a))
    bd = bsub.add_parser("device", help="the paper's models on this machine's accelerator: samples/s, TFLOP/s, "
                                        "MFU, memory (a reduced form on a CPU)")
    bd.add_argument("--reduced", action="store_true", help="the reduced form even on a GPU")
    bd.set_defaults(fn=_bench_device)
    bp = bsub.add_parser("prepare", help="vlstudy prepare throughput on generated VQA files and features")
    bp.add_argument("--images", type=int, default=500)
    bp.add_argument("--regions", type=int, default=100)
    bp.add_argument("--dim", type=int, default=2048)
    bp.add_argument("--form", nargs="+", default=["lmdb", "tsv", "npy"], choices=["lmdb", "tsv", "npy"])
    bp.set_defaults(fn=_bench_prepare)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
