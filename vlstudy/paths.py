"""Where things live. Outputs go to ``outputs/`` at the repo root unless VLSTUDY_OUTPUT_ROOT says."""
from __future__ import annotations

import functools
import hashlib
import json
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


def read_json(path: Path, what: str, missing_ok: bool = False):
    """A JSON file's content; a missing (unless ``missing_ok``: None), non-UTF-8 or malformed
    file is an error naming ``what`` it is (``"questions"``, ``"annotation"``) and where it breaks."""
    path = Path(path)
    if not path.exists():
        if missing_ok:
            return None
        raise FileNotFoundError(f"{what} file not found: {path}")
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ValueError(f"{what} file {path}: not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{what} file {path}: malformed JSON at line {e.lineno} column {e.colno} "
                         f"({e.msg})") from None


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
    last, so there is never a moment without one of them on disk, and a failed swap leaves the
    old one in place."""
    import shutil
    old = final.with_name(f"{final.name}.old{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    try:
        new.rename(final)
    except BaseException:
        if old.exists() and not final.exists():
            old.rename(final)        # the swap failed: the old folder goes back
        raise
    shutil.rmtree(old, ignore_errors=True)


def content_digest(path: Path) -> str:
    """The content hash of a file, or of a folder (every file under it, by relative name): what
    a run starting from a BERT folder or a checkpoint depends on, so that one replaced in place
    makes new runs. Each file is read again only when its size or modification time changes
    (run ids are asked for often; a BERT checkpoint is hundreds of MB)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(f for f in path.rglob("*") if f.is_file())
        listing = "\n".join(f"{f.relative_to(path).as_posix()} {content_digest(f)}" for f in files)
        return hashlib.sha256(listing.encode()).hexdigest()[:12]
    stat = path.stat()
    return _file_digest(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=1024)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:12]
