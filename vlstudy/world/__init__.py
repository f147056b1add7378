"""The embedded synthetic world: scenes, region features and texts with explicit domains."""
from __future__ import annotations

from pathlib import Path

from ..data.root import DataRoot
from .build import DOWNSTREAM, PRESETS, PRETRAINING, WorldSpec, build_world, world_spec
from .domains import TEXT_DOMAINS, VISUAL_DOMAINS
from .text import TextDomain, interpolate_text
from .visual import VisualDomain, interpolate_visual

__all__ = ["DOWNSTREAM", "PRESETS", "PRETRAINING", "TEXT_DOMAINS", "VISUAL_DOMAINS", "TextDomain",
           "VisualDomain", "WorldSpec", "build_world", "interpolate_text", "interpolate_visual",
           "open_world", "world_spec"]


def open_world(preset: str = "small", root: Path | None = None, progress=None,
               seed: int | None = None, **overrides) -> DataRoot:
    """The world of a preset (at ``seed``, and overrides), built on first use under ``outputs/data``."""
    from ..paths import outputs_root
    spec = world_spec(preset, seed=seed, **overrides)
    return DataRoot(build_world(spec, Path(root) if root else outputs_root() / "data", progress))
