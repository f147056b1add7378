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


def publish_dir(new: Path, final: Path) -> None:
    """Rename the finished folder ``new`` to ``final``; if another process published ``final``
    first (a concurrent build of the same thing), keep theirs and delete ``new``."""
    import shutil
    try:
        new.rename(final)
    except OSError:
        if not final.exists():
            raise
        shutil.rmtree(new)


def swap_in_dir(new: Path, final: Path) -> None:
    """Replace the folder ``final`` by ``new``: the old one is renamed aside first and deleted
    last, so there is never a moment without one of them on disk."""
    import shutil
    old = final.with_name(f"{final.name}.old{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    new.rename(final)
    shutil.rmtree(old, ignore_errors=True)
