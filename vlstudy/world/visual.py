"""Visual domains: which scenes a source shows and how its "camera" turns them into regions.

A visual domain is a point in a small parameter space (object counts, category prior,
camera rotation, noise, blur, framing, empty shots). Two domains can be interpolated
field by field, so a pretraining set can be moved continuously between image sources.

A region is what a bottom-up-attention detector would give: a feature vector, a 5-d box
``[x1, y1, x2, y2, area]`` in [0, 1], and a class distribution over the categories plus
background. The "detector" is fixed for the whole world and, like a detector trained on a
broad dataset (Visual Genome), sees past each source's camera: noise, blur and partial
framing are what degrade its class distributions.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from .ontology import BACKGROUND, CATEGORIES, COLOURS, SIZES, STUFF, SUPERCATEGORIES


@dataclass(frozen=True)
class VisualDomain:
    name: str
    min_objects: float          # salient objects per image, drawn uniformly in [min, max]
    max_objects: float
    supercategory_weights: tuple[float, ...]  # prior over SUPERCATEGORIES (in their order)
    camera: float               # feature-space rotation: 0 = everyday photos, 1 = orthogonal view
    noise: float                # feature noise (relative to a clean region's norm)
    blur: float                 # per-image blur drawn in [0, blur]; blur scales the signal down
    crop: float                 # probability an object is only partly in the frame
    empty: float                # probability the photo misses its subject (no salient object)
    stuff: float                # mean number of background ("stuff") regions
    object_scale: float         # typical box side

    def category_weights(self) -> np.ndarray:
        """Per-category prior: each super-category's weight shared among its members."""
        w = [sw / len(cs) for sw, cs in zip(self.supercategory_weights, SUPERCATEGORIES.values())
             for _ in cs]
        w = np.asarray(w, dtype=np.float64)
        return w / w.sum()


def interpolate_visual(a: VisualDomain, b: VisualDomain, t: float) -> VisualDomain:
    """The domain a fraction ``t`` of the way from ``a`` to ``b`` (every field linearly)."""
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"interpolation weight must be in [0, 1], got {t}")
    mixed = {}
    for f in fields(VisualDomain):
        if f.name == "name":
            continue
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, tuple):
            mixed[f.name] = tuple((1 - t) * xi + t * yi for xi, yi in zip(x, y))
        else:
            mixed[f.name] = (1 - t) * x + t * y
    return VisualDomain(name=f"{a.name}~{b.name}@{t:.2f}", **mixed)


@dataclass
class SceneObject:
    category: int
    colour: int
    size: int
    box: tuple[float, float, float, float]   # x1, y1, x2, y2 in [0, 1]
    visible: float = 1.0                     # fraction inside the frame

    @property
    def centre(self) -> tuple[float, float]:
        return (self.box[0] + self.box[2]) / 2, (self.box[1] + self.box[3]) / 2


@dataclass
class Scene:
    objects: list[SceneObject]
    stuff: list[int]
    blur: float = 0.0
    genres: tuple[int, ...] = field(default=())   # posters only

    def count(self, category: int) -> int:
        return sum(o.category == category for o in self.objects)


def sample_scenes(domain: VisualDomain, rng: np.random.Generator, n: int,
                  category_weights: np.ndarray | None = None,
                  colour_weights: np.ndarray | None = None) -> list[Scene]:
    """``n`` images' content. Every attribute is drawn for all objects at once (flat arrays)."""
    cw = domain.category_weights() if category_weights is None else category_weights
    lo, hi = round(domain.min_objects), round(domain.max_objects)
    counts = np.where(rng.random(n) < domain.empty, 0, rng.integers(lo, hi + 1, size=n))
    m = int(counts.sum())
    cats = rng.choice(len(CATEGORIES), size=m, p=cw)
    cols = rng.choice(len(COLOURS), size=m, p=colour_weights)
    sizes = rng.integers(len(SIZES), size=m)
    sides = domain.object_scale * np.where(sizes == 0, 0.6, 1.3) * rng.lognormal(0, 0.25, size=m)
    w = np.minimum(sides, 0.95)
    h = np.minimum(sides * rng.uniform(0.7, 1.4, size=m), 0.95)
    cx, cy = rng.uniform(0.1, 0.9, size=(2, m))
    cropped = rng.random(m) < domain.crop           # pushed partly out of the frame
    cx = np.where(cropped, 0.5 * rng.choice([-0.15, 1.15], size=m) + 0.5 * cx, cx)
    visible = np.where(cropped, rng.uniform(0.25, 0.7, size=m), 1.0)
    boxes = np.clip(np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1), 0, 1).tolist()
    n_stuff = rng.poisson(domain.stuff, size=n)
    stuff = rng.integers(len(STUFF), size=int(n_stuff.sum())).tolist()
    blur = rng.uniform(0, domain.blur, size=n).tolist()
    cats, cols, sizes, visible = cats.tolist(), cols.tolist(), sizes.tolist(), visible.tolist()
    scenes, o, s = [], 0, 0
    for i in range(n):
        objs = [SceneObject(cats[k], cols[k], sizes[k], tuple(boxes[k]), visible[k])
                for k in range(o, o + counts[i])]
        scenes.append(Scene(objects=objs, stuff=stuff[s:s + n_stuff[i]], blur=blur[i]))
        o += counts[i]
        s += n_stuff[i]
    return scenes


class Camera:
    """Turns scenes into region features; fixed for a world (its seed and feature width).

    Clean region = category + 0.6 colour + 0.3 size embedding (unit-scale random vectors).
    A domain's camera rotates features by ``camera * 90°`` in ``dim / 2`` fixed planes, so
    the cosine between the same region seen by cameras 0 and c is ``cos(c * 90°)``.
    """

    DETECTOR_SHARPNESS = 6.0   # logit scale of the detector's cosine scores
    DETECTOR_THRESHOLD = 0.5   # the background score: below this best cosine, background wins

    def __init__(self, dim: int, seed: int):
        if dim < 4 or dim % 2:
            raise ValueError(f"feature width must be an even number >= 4, got {dim}")
        rng = np.random.default_rng([seed, 7])
        unit = lambda n: rng.normal(0, 1 / np.sqrt(dim), size=(n, dim))  # noqa: E731
        self.dim = dim
        self.category = unit(len(CATEGORIES))
        self.colour = unit(len(COLOURS))
        self.size = unit(len(SIZES))
        self.stuff = unit(len(STUFF))
        self.basis, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
        self.prototypes = self.category / np.linalg.norm(self.category, axis=1, keepdims=True)

    def rotation(self, camera: float) -> np.ndarray:
        angle = camera * np.pi / 2
        c, s = np.cos(angle), np.sin(angle)
        block = np.zeros((self.dim, self.dim))
        for i in range(0, self.dim, 2):
            block[i:i + 2, i:i + 2] = [[c, -s], [s, c]]
        return self.basis @ block @ self.basis.T

    def render(self, scenes: list[Scene], domain: VisualDomain, rng: np.random.Generator,
               max_regions: int) -> dict[str, np.ndarray]:
        """Regions of every scene, padded to ``max_regions`` (objects and stuff, in random order).

        Returns ``features`` (N, R, D) float32, ``boxes`` (N, R, 5), ``cls_prob``
        (N, R, C + 1) and ``num_regions`` (N,). An image with nothing in it still gets one
        blank full-frame region, as a detector always proposes something.
        """
        n, d, r = len(scenes), self.dim, max_regions
        # flat region table: image, kind (0 object, 1 stuff, 2 blank), and the object's fields
        image, kind, cat, col, size, vis, box = [], [], [], [], [], [], []
        for i, sc in enumerate(scenes):
            for o in sc.objects:
                image.append(i); kind.append(0); cat.append(o.category); col.append(o.colour)  # noqa: E702
                size.append(o.size); vis.append(o.visible); box.append(o.box)  # noqa: E702
            for st in sc.stuff:
                image.append(i); kind.append(1); cat.append(st); col.append(0)  # noqa: E702
                size.append(0); vis.append(1.0); box.append((0.0, 0.0, 0.0, 0.0))  # noqa: E702
            if not sc.objects and not sc.stuff:
                image.append(i); kind.append(2); cat.append(0); col.append(0)  # noqa: E702
                size.append(0); vis.append(0.0); box.append((0.0, 0.0, 1.0, 1.0))  # noqa: E702
        image, kind, cat = np.asarray(image), np.asarray(kind), np.asarray(cat)
        col, size, vis, box = np.asarray(col), np.asarray(size), np.asarray(vis), np.asarray(box)
        is_obj, is_stuff = kind == 0, kind == 1
        clean = np.zeros((len(image), d))
        clean[is_obj] = (self.category[cat[is_obj]] + 0.6 * self.colour[col[is_obj]]
                         + 0.3 * self.size[size[is_obj]]) * vis[is_obj, None]
        clean[is_stuff] = self.stuff[cat[is_stuff]]
        corner = rng.uniform(0, 0.5, size=(int(is_stuff.sum()), 2))
        box[is_stuff] = np.concatenate([corner, corner + rng.uniform(0.3, 0.5, size=corner.shape)], 1)
        box = np.clip(box, 0, 1)
        blur = np.asarray([sc.blur for sc in scenes])[image]
        sensed = clean * (1 - blur)[:, None] + rng.normal(0, domain.noise / np.sqrt(d), size=clean.shape)
        # scaled to about unit variance per dimension, the scale of standardised detector
        # features: a region then stands out from VisualBERT's shared type/position
        # embeddings at initialisation, as 2048-d real features do
        seen = np.sqrt(d) * sensed @ self.rotation(domain.camera).T
        # random order within each image, then keep the first ``r``
        order = np.lexsort((rng.random(len(image)), image))
        starts = np.searchsorted(image[order], np.arange(n))
        slot = np.arange(len(image)) - starts[image[order]]
        keep = order[slot < r]
        rows, cols = image[keep], slot[slot < r]
        feats = np.zeros((n, r, d), np.float32)
        boxes = np.zeros((n, r, 5), np.float32)
        cls_prob = np.zeros((n, r, len(CATEGORIES) + 1), np.float32)
        cls_prob[:, :, BACKGROUND] = 1.0
        feats[rows, cols] = seen[keep]
        b = box[keep]
        boxes[rows, cols] = np.concatenate([b, ((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]))[:, None]], 1)
        cls_prob[rows, cols] = self.detect(sensed[keep])
        num = np.minimum(np.bincount(image, minlength=n), r)
        return {"features": feats, "boxes": boxes, "cls_prob": cls_prob, "num_regions": num}

    def detect(self, sensed: np.ndarray) -> np.ndarray:
        """The world's fixed detector: softmax over cosines to the category prototypes and a
        constant background score, so a region that matches no category well is background."""
        norm = np.linalg.norm(sensed, axis=1, keepdims=True) + 1e-8
        cos = (sensed / norm) @ self.prototypes.T                          # (n, C)
        background = np.full((len(cos), 1), self.DETECTOR_THRESHOLD)
        logits = self.DETECTOR_SHARPNESS * np.concatenate([cos, background], axis=1)
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)
