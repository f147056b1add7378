"""Build every dataset of the study from a seed and sizes.

A world is written once to ``<root>/world-<hash>/`` (atomically: a crash leaves no
directory that looks finished) and reused after. Layout::

    spec.json                 the WorldSpec it was built from
    stores/<source>/          region features of one image source (see data.features)
    datasets/<name>/          dataset.json + train.jsonl, val.jsonl, test.jsonl (data.records)
    corpus.txt                the text-only corpus of the stand-in "BERT" stage
    vocabulary.txt            what the tokenizer learns from: the corpus and questions

Image sources are shared the way the paper's are: COCO captions and VQA-P are written on
the same COCO pool; VQA-D trains on questions about pool images and is validated and
tested on held-out COCO-like images; CC-small is a random subset of CC-full.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import shutil
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.features import write_store
from ..data.records import Record, write_records
from ..paths import publish_dir
from .domains import TEXT_DOMAINS, VISUAL_DOMAINS, genre_prior, poster_priors
from .ontology import GENRES
from .text import STATEMENT_LABELS, describe, plot, statement, vizwiz_question, vqa_question
from .visual import Camera, Scene, VisualDomain, sample_scenes

SPLITS = ("train", "val", "test")
# Bump when the generator changes what a spec builds: built worlds are cached by digest.
GENERATOR_VERSION = 6             # 5: a deterministic tokenizer vocabulary; 6: VizWiz's
                                  # unanswerable share brought to the real dataset's (~27 %)
# World seeds by role (see docs/evidence.md, "Calibration and confirmation"). Every world knob and
# recipe setting is chosen on validation scores of calibration worlds; the report's verdicts
# are computed on the confirmation world, whose seed nothing was tuned on. Calibration code
# (vlstudy.calibration) refuses every world that is not a calibration world.
CALIBRATION_SEEDS = (0, 7)        # 0: the default world's; 7: a second world used in calibration
# Retired worlds, neither calibration nor confirmation: their test results were read before
# the present design was chosen. Seed 1 confirmed the design of stop 23 (before one BERT
# stage and VizWiz's unanswerable share); seed 2 that of stop 24 (four primaries, before
# the second calibration world showed which of them the hour can power); seed 3 that of
# stops 25-31 (one frozen-base primary), whose one-block whole-model results were read; seed 11
# that of stop 32 (five primaries, the baseline recipe), before LP-FT was measured.
RETIRED_SEEDS = (1, 2, 3, 11)
# Named at stop 33 before any run on it, for the recipe and design chosen on seeds 0 and 7 after
# round 2 of the stability levers (docs/evidence.md)
CONFIRMATION_SEED = 13


def seed_role(seed: int | None) -> str:
    """A world seed's role: "calibration", "confirmation" or "other" (retired, or never
    assigned); None is the preset's own seed, 0, a calibration world."""
    if seed is None or seed in CALIBRATION_SEEDS:
        return "calibration"
    return "confirmation" if seed == CONFIRMATION_SEED else "other"


PRETRAINING = ("coco", "vqa_p", "cc_small", "cc_full")
DOWNSTREAM = ("vqa_d", "vizwiz", "snli_ve", "mmimdb")
# Genres of an MM-IMDB-like movie: 1, 2 or 3 with these probabilities (mean 1.75, a choice of
# the world; the real dataset has more per movie)
GENRES_PER_MOVIE = (0.45, 0.35, 0.2)


@dataclass(frozen=True)
class WorldSpec:
    """Everything a world is a pure function of. Sizes are counts of records."""
    seed: int = 0
    feature_dim: int = 32
    max_regions: int = 10
    coco_images: int = 1600          # COCO pool; captions = 5 per image = the pretraining size
    cc_full_factor: int = 10         # CC-full is this many times CC-small (= COCO's size)
    pretrain_holdout: float = 0.05   # of pretraining images, for val and again for test
    # Test splits of 10,000: at ~55 % one score's test-sampling sd is 100·√(0.2475/n) = 0.5
    # points (at 600 it was 2.0, as large as the effects sought); validation splits of 2,000
    # pick the checkpoint (sd 1.1 points, and two checkpoints of one run differ on the same
    # questions, so less). Evaluation is a forward pass: cheap next to training.
    vqa_d: tuple[int, int, int] = (3000, 2000, 10000)  # questions: train, val, test
    vizwiz: tuple[int, int, int] = (600, 2000, 10000)  # low-resource (training split)
    snli_ve: tuple[int, int, int] = (3000, 600, 600)   # statements (3 per image)
    mmimdb: tuple[int, int, int] = (600, 200, 400)     # movies, low-resource
    corpus_sentences: int = 20000

    @property
    def pretraining_pairs(self) -> int:
        return 5 * self.coco_images

    def digest(self) -> str:
        blob = json.dumps([GENERATOR_VERSION, dataclasses.asdict(self)], sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:12]


PRESETS: dict[str, WorldSpec] = {
    "smoke": WorldSpec(feature_dim=16, max_regions=8, coco_images=40, cc_full_factor=3,
                       pretrain_holdout=0.1, vqa_d=(90, 30, 30), vizwiz=(60, 30, 30),
                       snli_ve=(90, 30, 30), mmimdb=(60, 30, 30), corpus_sentences=600),
    "small": WorldSpec(),
    "full": WorldSpec(feature_dim=64, max_regions=12, coco_images=6000,
                      vqa_d=(12000, 2000, 10000), vizwiz=(1500, 2000, 10000),
                      snli_ve=(12000, 2000, 2000), mmimdb=(1500, 500, 1000),
                      corpus_sentences=80000),
}


def world_spec(preset: str = "small", seed: int | None = None, **overrides) -> WorldSpec:
    """A preset's spec, at another world seed when ``seed`` is given."""
    if seed is not None:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"a world seed is an integer >= 0, got {seed!r}")
        overrides["seed"] = seed
    if preset not in PRESETS:
        raise ValueError(f"unknown world preset {preset!r}; known: {sorted(PRESETS)}")
    try:
        return dataclasses.replace(PRESETS[preset], **overrides)
    except TypeError as e:
        raise ValueError(f"bad world override {overrides}: {e}") from None


def streams(spec: WorldSpec, what: str) -> tuple[np.random.Generator, random.Random]:
    """Independent, stable streams per part of the world (so sizes of one part leave others alone)."""
    key = zlib.crc32(what.encode())
    # 1_000_003 (a prime) folds the seed and the part's crc32 key into one integer for Python's
    # Random; its value is part of what a world is (changing it would need a GENERATOR_VERSION)
    return np.random.default_rng([spec.seed, key]), random.Random(spec.seed * 1_000_003 + key)


def split_of(i: int, n: int, holdout: float) -> str:
    """Deterministic split of item ``i`` of ``n``: the last items are val, then test."""
    k = max(1, round(n * holdout))
    return "val" if n - 2 * k <= i < n - k else "test" if i >= n - k else "train"


def image_ids(store: str, n: int) -> list[str]:
    """The ids of a store's ``n`` images, as the world names them."""
    return [f"{store}_{i:07d}" for i in range(n)]


class Builder:
    """Writes a world's parts into ``out``: each dataset from its own streams (``streams``);
    ``world.points`` uses it for the domain map's generated pretraining sets."""

    def __init__(self, spec: WorldSpec, out: Path):
        self.spec, self.out = spec, out
        self.camera = Camera(spec.feature_dim, spec.seed)
        self.timings: dict[str, float] = {}

    def store(self, name: str, scenes: list[Scene], domain: str | VisualDomain,
              rng: np.random.Generator) -> list[str]:
        ids = image_ids(name, len(scenes))
        domain = VISUAL_DOMAINS[domain] if isinstance(domain, str) else domain
        arrays = self.camera.render(scenes, domain, rng, self.spec.max_regions)
        write_store(self.out / "stores" / name, ids, **arrays)
        return ids

    def dataset(self, name: str, task: str, store: str, records: dict[str, list[Record]], **meta):
        write_records(self.out / "datasets" / name, records, task=task, store=store, **meta)

    def timed(self, what: str, fn):
        t = time.perf_counter()
        fn()
        self.timings[what] = round(time.perf_counter() - t, 3)

    # --- image sources and their datasets ----------------------------------------------
    def coco(self):
        s = self.spec
        rng, trng = streams(s, "coco")
        n_pool = s.coco_images
        vq_val, vq_test = (-(-n // 2) for n in s.vqa_d[1:])          # 2 questions per image
        scenes = sample_scenes(VISUAL_DOMAINS["coco"], rng, n_pool + vq_val + vq_test)
        ids = self.store("coco", scenes, "coco", rng)
        captions, vqa = TEXT_DOMAINS["captions"], TEXT_DOMAINS["vqa"]
        cap = {sp: [] for sp in SPLITS}
        vqp = {sp: [] for sp in SPLITS}
        for i in range(n_pool):
            sp = split_of(i, n_pool, s.pretrain_holdout)
            for k in range(5):
                cap[sp].append(Record(f"coco-{i}-{k}", ids[i], describe(scenes[i], captions, trng)))
                vqp[sp].append(Record(f"vqa_p-{i}-{k}", ids[i], describe(scenes[i], vqa, trng)))
        self.dataset("coco", "pretraining", "coco", cap, visual="coco", textual="captions")
        self.dataset("vqa_p", "pretraining", "coco", vqp, visual="coco", textual="vqa")
        # VQA-D: train on pool (train split) images, evaluate on held-out images
        pool_train = [i for i in range(n_pool) if split_of(i, n_pool, s.pretrain_holdout) == "train"]
        held = {"val": range(n_pool, n_pool + vq_val),
                "test": range(n_pool + vq_val, n_pool + vq_val + vq_test)}
        vqd = {}
        for sp, n in zip(SPLITS, s.vqa_d):
            images = [trng.choice(pool_train) for _ in range(n)] if sp == "train" else \
                [held[sp][j // 2] for j in range(n)]
            vqd[sp] = []
            for j, i in enumerate(images):
                q = vqa_question(scenes[i], vqa, trng)
                vqd[sp].append(Record(f"vqa_d-{sp}-{j}", ids[i], q.text, answers=tuple(q.answers),
                                      answer_type=q.answer_type))
        self.dataset("vqa_d", "vqa", "coco", vqd, visual="coco", textual="vqa")

    def cc(self):
        s = self.spec
        rng, trng = streams(s, "cc")
        n_small = s.pretraining_pairs
        n_full = n_small * s.cc_full_factor
        scenes = sample_scenes(VISUAL_DOMAINS["cc"], rng, n_full)
        ids = self.store("cc", scenes, "cc", rng)
        alt = TEXT_DOMAINS["alttext"]
        full = {sp: [] for sp in SPLITS}
        small = {sp: [] for sp in SPLITS}
        # CC-small's images are spread evenly through CC-full, so its splits are CC-full's.
        stride = s.cc_full_factor
        for i in range(n_full):
            sp = split_of(i, n_full, s.pretrain_holdout)
            rec = Record(f"cc-{i}", ids[i], describe(scenes[i], alt, trng))
            full[sp].append(rec)
            if i % stride == 0:
                small[sp].append(rec)
        self.dataset("cc_full", "pretraining", "cc", full, visual="cc", textual="alttext")
        self.dataset("cc_small", "pretraining", "cc", small, visual="cc", textual="alttext")

    def vizwiz(self):
        rng, trng = streams(self.spec, "vizwiz")
        n = sum(self.spec.vizwiz)
        scenes = sample_scenes(VISUAL_DOMAINS["vizwiz"], rng, n)
        ids = self.store("vizwiz", scenes, "vizwiz", rng)
        d = TEXT_DOMAINS["vizwiz"]
        recs, start = {}, 0
        for sp, k in zip(SPLITS, self.spec.vizwiz):
            recs[sp] = []
            for i in range(start, start + k):
                q = vizwiz_question(scenes[i], d, trng)
                recs[sp].append(Record(f"vizwiz-{i}", ids[i], q.text, answers=tuple(q.answers),
                                       answer_type=q.answer_type))
            start += k
        self.dataset("vizwiz", "vizwiz", "vizwiz", recs, visual="vizwiz", textual="vizwiz")

    def snli_ve(self):
        rng, trng = streams(self.spec, "snli_ve")
        per_split = [-(-k // 3) for k in self.spec.snli_ve]
        scenes = sample_scenes(VISUAL_DOMAINS["flickr"], rng, sum(per_split))
        ids = self.store("flickr", scenes, "flickr", rng)
        d = TEXT_DOMAINS["statements"]
        recs, start = {}, 0
        for sp, k, n_img in zip(SPLITS, self.spec.snli_ve, per_split):
            recs[sp] = []
            for j in range(k):
                i, label = start + j // 3, j % 3
                recs[sp].append(Record(f"snli_ve-{sp}-{j}", ids[i],
                                       statement(scenes[i], STATEMENT_LABELS[label], d, trng),
                                       label=label))
            start += n_img
        self.dataset("snli_ve", "snli_ve", "flickr", recs, visual="flickr", textual="statements",
                     label_names=list(STATEMENT_LABELS))

    def mmimdb(self):
        rng, trng = streams(self.spec, "mmimdb")
        n = sum(self.spec.mmimdb)
        prior = genre_prior()
        scenes = []
        for _ in range(n):
            k = int(rng.choice([1, 2, 3], p=GENRES_PER_MOVIE))
            genres = tuple(sorted(int(g) for g in rng.choice(len(GENRES), size=k, replace=False, p=prior)))
            cats, cols = poster_priors(genres)
            scene, = sample_scenes(VISUAL_DOMAINS["poster"], rng, 1, cats, cols)
            scene.genres = genres
            scenes.append(scene)
        ids = self.store("poster", scenes, "poster", rng)
        d = TEXT_DOMAINS["plots"]
        recs, start = {}, 0
        for sp, k in zip(SPLITS, self.spec.mmimdb):
            recs[sp] = [Record(f"mmimdb-{i}", ids[i], plot(scenes[i], d, trng),
                               labels=tuple(GENRES[g] for g in scenes[i].genres))
                        for i in range(start, start + k)]
            start += k
        self.dataset("mmimdb", "mmimdb", "poster", recs, visual="poster", textual="plots",
                     label_names=list(GENRES))

    def corpus(self):
        """Text only, from scenes of every visual domain, in every way the world talks."""
        rng, trng = streams(self.spec, "corpus")
        broad = TEXT_DOMAINS["broad"]
        per_domain = -(-self.spec.corpus_sentences // len(VISUAL_DOMAINS))
        lines = []
        for domain in VISUAL_DOMAINS.values():
            scenes = sample_scenes(domain, rng, per_domain)
            genres = rng.choice(len(GENRES), size=per_domain, p=genre_prior())
            for scene, g in zip(scenes, genres):
                if domain.name == "poster":
                    scene.genres = (int(g),)
                lines.append(describe(scene, broad, trng))
        trng.shuffle(lines)
        (self.out / "corpus.txt").write_text("\n".join(lines) + "\n")
        # The vocabulary covers questions too, as BERT's word pieces cover English: the
        # tokenizer learns from the corpus plus questions the BERT stage never trains on.
        questions = TEXT_DOMAINS["questions"]
        extra = [describe(s, questions, trng) for s in sample_scenes(VISUAL_DOMAINS["coco"], rng,
                                                                         max(1, len(lines) // 5))]
        (self.out / "vocabulary.txt").write_text("\n".join(lines + extra) + "\n")


def world_dir(spec: WorldSpec, root: Path) -> Path:
    return Path(root) / f"world-{spec.digest()}"


def build_world(spec: WorldSpec, root: Path, progress=None) -> Path:
    """Build (or find, if already built) the world of ``spec`` under ``root``; returns its folder."""
    final = world_dir(spec, root)
    if (final / "spec.json").exists():
        return final
    tmp = final.with_name(final.name + f".tmp-{time.time_ns()}")
    tmp.mkdir(parents=True)
    try:
        b = Builder(spec, tmp)
        for part in ("coco", "cc", "vizwiz", "snli_ve", "mmimdb", "corpus"):
            if progress:
                progress(part)
            b.timed(part, getattr(b, part))
        from ..data.tokenizer import train_tokenizer
        b.timed("tokenizer", lambda: train_tokenizer(tmp / "vocabulary.txt", tmp / "tokenizer"))
        (tmp / "build_timings.json").write_text(json.dumps(b.timings, indent=1))
        (tmp / "spec.json").write_text(json.dumps(dataclasses.asdict(spec), indent=1))
        publish_dir(tmp, final)    # built concurrently by another process: keep theirs
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final
