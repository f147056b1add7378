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
