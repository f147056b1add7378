"""One trainer per run: an OS lock on each run folder, and a note of who holds it.

The lock is ``filelock``'s ``FileLock`` on ``<run>/lock``: ``flock(2)``, which the kernel
releases when its holder exits however it exits (SIGKILL included), so a dead trainer never
keeps a run locked. A filesystem without ``flock`` is an error, not a silent fallback to a
marker file that a dead holder would leave behind. Beside the lock, ``holder.json`` says who
took it (host, pid, job, DDP group, since when) for the processes that wait and for
``vlstudy runs``; it is only a note: whether a run is held is always asked of the lock.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path

from filelock import FileLock, Timeout

from .paths import atomic_write_text

LOCK_FILE, HOLDER_FILE = "lock", "holder.json"
# How long a request tries the lock before it calls the run busy: ``is_held`` probes by taking
# the lock for an instant, so a request that meets a probe must not mistake it for a trainer
SETTLE_S = 0.25


class RunBusy(RuntimeError):
    """The run is being trained by another process, and the caller asked not to wait."""


def _lock(folder: Path) -> FileLock:
    return FileLock(Path(folder) / LOCK_FILE, fallback_to_soft=False)


def job_id() -> str | None:
    """The cluster job this process runs in (SLURM's, or submitit's local executor's)."""
    return os.environ.get("SLURM_JOB_ID") or os.environ.get("SUBMITIT_LOCAL_JOB_ID")


def group_id() -> str:
    """What the processes of one DDP group share and no concurrent group does: the address
    their rendezvous listens on (one port, one group at a time), and the job they run in."""
    return ":".join(os.environ.get(k, "") for k in ("MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")) \
        + f"/{job_id() or ''}/{socket.gethostname()}"


def holder(folder: Path) -> dict | None:
    """The note the run's last holder wrote (it may have finished or died since)."""
    path = Path(folder) / HOLDER_FILE
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def describe(note: dict | None) -> str:
    if not note:
        return "a process that has not yet said who it is"
    job = f", job {note['job']}" if note.get("job") else ""
    since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(note["since"]))
    return f"pid {note['pid']} on {note['host']}{job}, since {since}"


def is_held(folder: Path) -> bool:
    """Whether a live process holds the run's lock now."""
    if not (Path(folder) / LOCK_FILE).exists():
        return False
    lock = _lock(folder)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    lock.release()
    return False


def _acquire_or_busy(lock: FileLock) -> bool:
    """Take the lock if it is free within ``SETTLE_S`` (a probe lets go at once); False if
    another process holds it."""
    try:
        lock.acquire(timeout=SETTLE_S)
    except Timeout:
        return False
    return True


def _sign(folder: Path) -> None:
    atomic_write_text(Path(folder) / HOLDER_FILE, json.dumps(
        {"host": socket.gethostname(), "pid": os.getpid(), "job": job_id(), "group": group_id(),
         "since": time.time()}))


def _alive(note: dict) -> bool:
    """Whether the note's process still runs (known only for this host's processes)."""
    if note["host"] != socket.gethostname():
        return True
    try:
        os.kill(note["pid"], 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder_now(folder: Path, settle_s: float = 2.0) -> dict | None:
    """The holder's note, giving a holder that has just taken the lock a moment to write it;
    None if no live process has signed (the note left is a finished or dead holder's)."""
    deadline = time.time() + settle_s
    while True:
        note = holder(folder)
        if note is not None and _alive(note):
            return note
        if time.time() >= deadline:
            return None
        time.sleep(0.05)


@contextlib.contextmanager
def hold(folder: Path, finished, wait: bool = True, log=print):
    """Hold the run's lock for the block, which gets whether to train: False when the run is
    ``finished()`` once the lock is had (the holder waited for trained it). Held by another
    process: wait for it (saying so once) or, with ``wait=False``, raise ``RunBusy`` naming the
    holder. A holder that will train signs the note at once."""
    lock = _lock(folder)
    if not _acquire_or_busy(lock):
        who = describe(_holder_now(folder))
        if not wait:
            raise RunBusy(f"run {Path(folder).name} is being trained by {who}")
        log(f"run {Path(folder).name} is being trained by {who}: waiting for it")
        lock.acquire()
    try:
        train = not finished()
        if train:
            _sign(folder)
        yield train
    finally:
        lock.release()


def wait_until_released(folder: Path, log=print) -> None:
    """Return once no process holds the run's lock (at once if none does)."""
    if is_held(folder):
        log(f"run {Path(folder).name} is being trained by {describe(_holder_now(folder))}: waiting for it")
        lock = _lock(folder)
        lock.acquire()
        lock.release()


def wait_for_group_holder(folder: Path, finished, poll_s: float = 0.5) -> None:
    """For the ranks > 0 of a DDP group, which do not lock: return once rank 0 of this group
    holds the run (then train beside it) or the run has ``finished()`` (rank 0 found it done,
    perhaps after waiting for another holder, and will not train)."""
    mine = group_id()
    while not finished():
        note = holder(folder)
        if note and note.get("group") == mine:
            if is_held(folder):
                return
            if not finished():       # rank 0 signed, let go and wrote no metrics: it failed
                raise RuntimeError(f"run {Path(folder).name}: rank 0 of this group stopped before the run "
                                   f"finished (see {Path(folder) / 'failure.json'} and its log)")
        time.sleep(poll_s)
