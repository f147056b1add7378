"""Pretraining sets between domains: the points of the domain map.

A point is a pretraining set whose images come from a visual domain a fraction of the way
between two of the world's visual domains, and whose texts come from a text domain a
fraction of the way between two of its text domains; the two fractions move independently.
It has the shape of CC-small (one text per image, as many images as the pretraining sets
have pairs) and is built on demand into the world's folder, a pure function of the world's
spec and the point, so runs on it are cached like runs on the world's own datasets.

Points at one visual fraction share their images (``stores/<store_name>``): moving along
the text axis changes only the text.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass

from ..data.records import Record
from ..data.root import ON_DEMAND, DataRoot
from ..paths import publish_dir
from .build import Builder, WorldSpec, image_ids, split_of, streams
from .domains import TEXT_DOMAINS, VISUAL_DOMAINS
from .text import describe, interpolate_text
from .visual import interpolate_visual, sample_scenes

# Bump when what a point builds changes. It is part of every point's name (and so of the
# ids of runs on it): a new version builds new folders, never reuses an old version's.
POINTS_VERSION = 1
PREFIX = f"mix{POINTS_VERSION}_"
if not ON_DEMAND.match(PREFIX):         # a data root lists every dataset but these
    raise ImportError(f"domain points' prefix {PREFIX!r} is not data.root.ON_DEMAND ({ON_DEMAND.pattern})")
# Domains a point can lie between (posters' scenes need genres; plots are not pretraining text).
_NO_POINTS = {"poster", "plots", "broad", "questions"}


@dataclass(frozen=True)
class DomainPoint:
    """``visual_t`` of the way from ``visual_from`` to ``visual_to`` (a VisualDomain name), and
    ``textual_t`` of the way from ``textual_from`` to ``textual_to`` (a TextDomain name)."""
    visual_from: str
    visual_to: str
    visual_t: float
    textual_from: str
    textual_to: str
    textual_t: float

    def __post_init__(self):
        for field, names in (("visual_from", VISUAL_DOMAINS), ("visual_to", VISUAL_DOMAINS),
                             ("textual_from", TEXT_DOMAINS), ("textual_to", TEXT_DOMAINS)):
            value = getattr(self, field)
            if value not in names or value in _NO_POINTS:
                raise ValueError(f"domain point: {field} {value!r} is not one of "
                                 f"{sorted(set(names) - _NO_POINTS)}")
        for field in ("visual_t", "textual_t"):
            t = getattr(self, field)
            if not 0.0 <= t <= 1.0:
                raise ValueError(f"domain point: {field} must be in [0, 1], got {t}")
            if abs(100 * t - round(100 * t)) > 1e-9:     # the name keeps two decimals
                raise ValueError(f"domain point: {field} {t} has more than two decimals")

    @property
    def store_name(self) -> str:
        return f"{PREFIX}{self.visual_from}-{self.visual_to}_{self.visual_t:.2f}"

    @property
    def name(self) -> str:
        """The dataset's name, e.g. ``mix1_cc-coco_0.50_alttext-vqa_1.00``."""
        return f"{self.store_name}_{self.textual_from}-{self.textual_to}_{self.textual_t:.2f}"


def build_point(root: DataRoot, point: DomainPoint) -> str:
    """Write ``point``'s dataset (and its images, unless another point at the same visual
    fraction wrote them) into the world ``root``; returns the dataset's name. Atomic: the
    store is renamed into place before the dataset, so a visible dataset has its images."""
    spec_file = root.folder / "spec.json"
    if not spec_file.exists():
        raise ValueError(f"{root.folder} is not a synthetic world (no spec.json): domain points "
                         f"are generated, so they exist only in the world")
    if (root.folder / "datasets" / point.name / "dataset.json").exists():
        return point.name
    spec = _world_spec(root)
    n = spec.pretraining_pairs
    rng, _ = streams(spec, f"point-images-{point.store_name}")
    domain = interpolate_visual(VISUAL_DOMAINS[point.visual_from], VISUAL_DOMAINS[point.visual_to],
                                point.visual_t)
    scenes = sample_scenes(domain, rng, n)                       # drawn first: the same for every text
    tmp = root.folder / f".tmp-{point.name}-{time.time_ns()}"
    try:
        builder = Builder(spec, tmp)
        ids = image_ids(point.store_name, n)
        if not (root.folder / "stores" / point.store_name).exists():
            builder.store(point.store_name, scenes, domain, rng)
        texts = interpolate_text(TEXT_DOMAINS[point.textual_from], TEXT_DOMAINS[point.textual_to],
                                 point.textual_t)
        _, trng = streams(spec, f"point-text-{point.name}")
        records = {sp: [] for sp in ("train", "val", "test")}
        for i, scene in enumerate(scenes):
            records[split_of(i, n, spec.pretrain_holdout)].append(
                Record(f"{point.name}-{i}", ids[i], describe(scene, texts, trng)))
        builder.dataset(point.name, "pretraining", point.store_name, records,
                        visual=domain.name, textual=texts.name, point=dataclasses.asdict(point),
                        points_version=POINTS_VERSION)
        for part in ("stores", "datasets"):                       # images first, then their text
            for made in sorted((tmp / part).glob("*")):
                publish_dir(made, root.folder / part / made.name)     # or keep a concurrent build's
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return point.name


def _world_spec(root: DataRoot) -> WorldSpec:
    """The spec the world in ``root`` was built from, checked against the folder's digest."""
    path = root.folder / "spec.json"
    try:
        spec = WorldSpec(**{k: tuple(v) if isinstance(v, list) else v
                            for k, v in json.loads(path.read_text()).items()})
    except (TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a world spec ({e})") from None
    if root.folder.name != f"world-{spec.digest()}":
        raise ValueError(f"{path} describes world-{spec.digest()}, not the folder {root.folder.name}")
    return spec


def domain_grid(steps: list[float], visual: tuple[str, str], textual: tuple[str, str]) -> list[DomainPoint]:
    """Every (visual t, textual t) of ``steps`` × ``steps`` between the two pairs of domains."""
    return [DomainPoint(*visual, float(v), *textual, float(t)) for v in steps for t in steps]
