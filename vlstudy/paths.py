"""Where things live. Outputs go to ``outputs/`` at the repo root unless VLSTUDY_OUTPUT_ROOT says."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent


def outputs_root() -> Path:
    return Path(os.environ.get("VLSTUDY_OUTPUT_ROOT") or REPO_ROOT / "outputs")


def notebooks_dir() -> Path:
    return REPO_ROOT / "notebooks"


def params_dir() -> Path:
    return REPO_ROOT / "params"


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the whole new one, never a
    part (a process-unique temporary file, then a rename)."""
    path = Path(path)
    tmp = path.with_name(f"{path.name}.tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)
