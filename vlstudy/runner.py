"""Execute the study's notebooks with papermill under a parameter profile.

A profile (``params/<name>.yaml``, ``profiles``) gives each notebook its parameters
(``parameters.resolve``); they are checked, every notebook's, before anything runs. Each
executed notebook lands in ``outputs/<profile>/notebooks/`` with a ``.json`` run record
beside it.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path

from .inputs import check_what_parameters_name
from .parameters import resolve
from .paths import notebooks_dir, outputs_root
from .profiles import load_profile, notebook_paths
from .study import RUN_LOG_PREFIX, Recipe


def notebook_parameters(profile: str, name: str, path: Path, recipe: dict | None = None) -> dict:
    """The parameters ``name`` gets under ``profile`` (``parameters.resolve``: what the
    notebook computes itself when opened in JupyterLab); ``recipe``: Recipe settings from the
    command line (the executor), over the profile's."""
    return resolve(profile, name, path, recipe=recipe)


def plan_study(profile: str, only: list[str] | None = None, out_root: Path | None = None,
               recipe: dict | None = None) -> dict:
    """Every notebook's parameters under ``profile`` (and the command line's ``recipe``
    settings), checked (names, types, what they point to) before any notebook runs: a bad
    profile fails here, with nothing started."""
    nbs = notebook_paths()
    profile_nbs = set((load_profile(profile).get("notebooks") or {}))
    stray = profile_nbs - set(nbs)
    if stray:
        raise ValueError(f"profile {profile!r} names notebook(s) {sorted(stray)} that do not exist; "
                         f"notebooks: {sorted(nbs)}")
    if only:
        missing = [o for o in only if o not in nbs]
        if missing:
            raise ValueError(f"no notebook(s) {missing}; notebooks: {sorted(nbs)}")
        nbs = {k: v for k, v in nbs.items() if k in only}
    plan = {name: notebook_parameters(profile, name, path, recipe) for name, path in nbs.items()}
    with _output_root(out_root):          # a world preset the check opens is built where the kernels look
        for name, params in plan.items():
            where = f"profile {profile!r}, notebook {name!r}"
            settings = Recipe.from_params(params)     # the recipe's settings: known fields of their types
            check_what_parameters_name(params, settings.world, settings.world_seed, where, notebooks_dir())
    return {name: (nbs[name], params) for name, params in plan.items()}


def run_study(profile: str, only: list[str] | None = None, out_root: Path | None = None,
              log=print, plan: dict | None = None, records: list | None = None) -> list[dict]:
    """Execute the planned notebooks one after the other; their run records, also appended
    to ``records`` as each finishes (what an interrupted study did)."""
    plan = plan or plan_study(profile, only, out_root)
    out_root = Path(out_root or outputs_root())
    out_dir = out_root / profile / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    records = [] if records is None else records
    with _output_root(out_root):          # the kernels write their tables there too
        _execute({n: p for n, (_, p) in plan.items()}, {n: path for n, (path, _) in plan.items()},
                 profile, out_dir, records, log)
    return records


@contextlib.contextmanager
def _output_root(out_root: Path | None):
    """``VLSTUDY_OUTPUT_ROOT`` set to ``out_root`` (when given) for the block, then restored."""
    if out_root is None:
        yield
        return
    previous = os.environ.get("VLSTUDY_OUTPUT_ROOT")
    os.environ["VLSTUDY_OUTPUT_ROOT"] = str(out_root)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("VLSTUDY_OUTPUT_ROOT")
        else:
            os.environ["VLSTUDY_OUTPUT_ROOT"] = previous


def _execute(plan: dict, nbs: dict, profile: str, out_dir: Path, records: list, log) -> None:
    import papermill as pm

    for k, (name, params) in enumerate(plan.items(), 1):
        started = time.time()
        log(f"[{k}/{len(plan)}] {name} ({profile}) ...", flush=True)
        rec = {"notebook": name, "profile": profile, "parameters": params, "started": started}
        try:
            pm.execute_notebook(str(nbs[name]), str(out_dir / f"{nbs[name].stem}.ipynb"),
                                parameters=params, kernel_name="python3", language="python",
                                cwd=str(nbs[name].parent), progress_bar=False,
                                log_output=False, coalesce_streams=True, stderr_file=_RunLines(log),
                                kernel_manager_class=_kernel_manager_class())
            rec["status"] = "ok"
        except pm.PapermillExecutionError as e:
            rec.update(status="failed", cell=e.exec_count, error=f"{e.ename}: {e.evalue}")
        rec["seconds"] = round(time.time() - started, 1)
        (out_dir / f"{nbs[name].stem}.json").write_text(json.dumps(rec, indent=1, default=str))
        log(f"[{k}/{len(plan)}] {name}: {rec['status']} in {rec['seconds']} s"
            + (f" (cell {rec['cell']}: {rec['error']})" if rec["status"] != "ok" else ""), flush=True)
        records.append(rec)


def _kernel_manager_class():
    """jupyter_client's kernel manager, with two lines less on the console of a study that
    succeeds. It talks to its kernel over Unix sockets in a private folder, not TCP: local
    only, and ipykernel does not warn "Kernel is running over TCP without encryption" once
    per notebook. It sends no SIGINT before asking a kernel to shut down: ipykernel logs that
    as "ERROR | KeyboardInterrupt caught in kernel", which reads as a failure."""
    import shutil

    from jupyter_client import AsyncKernelManager

    class QuietKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            self._socket_dir = _socket_folder() if os.name == "posix" else None   # else TCP, the default
            if self._socket_dir:
                kwargs.update(transport="ipc", ip=f"{self._socket_dir}/kernel")
            super().__init__(**kwargs)

        async def _async_interrupt_kernel(self) -> None:
            if not self.shutting_down:
                await super()._async_interrupt_kernel()

        async def _async_cleanup_resources(self, restart: bool = False) -> None:
            await super()._async_cleanup_resources(restart)
            if not restart and self._socket_dir:
                shutil.rmtree(self._socket_dir, ignore_errors=True)
        # nbclient calls this one for a kernel that died or never started
        cleanup_resources = _async_cleanup_resources
    return QuietKernelManager


def _socket_folder() -> str:
    """A private folder for a kernel's Unix sockets, short enough for their paths (at most
    104-108 bytes): under the temp folder, or /tmp where that is long (SLURM's TMPDIR)."""
    import shutil
    import tempfile
    folder = tempfile.mkdtemp(prefix="vlstudy-kernel-")
    if len(folder) > 90:
        shutil.rmtree(folder)
        folder = tempfile.mkdtemp(prefix="vlstudy-kernel-", dir="/tmp")
    return folder


class _RunLines:
    """A kernel's stderr, as papermill streams it, reduced to the study's one line per
    finished run: the progress of a long notebook, without the libraries' warnings."""

    def __init__(self, log):
        self.log, self.pending = log, ""

    def write(self, text: str) -> None:
        *lines, self.pending = (self.pending + text).split("\n")
        for line in lines:
            if line.startswith(RUN_LOG_PREFIX):
                self.log("    " + line[len(RUN_LOG_PREFIX):], flush=True)

    def flush(self) -> None:
        pass


def write_reference(executed: Path, dest: Path) -> None:
    """An nbval reference: the executed notebook with only its checked cells' outputs kept,
    and papermill's timing metadata dropped (so regenerating it changes only what matters)."""
    import nbformat

    nb = nbformat.read(str(executed), as_version=4)
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
        if cell.cell_type == "code" and "NBVAL_CHECK_OUTPUT" not in cell.source:
            cell.outputs = []
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(dest))


def executor_settings(args) -> dict:
    """The Recipe settings ``vlstudy study``'s executor options give (none: the profile's)."""
    cluster = {k: v for k, v in (("partition", args.partition), ("account", args.account),
                                 ("gpus_per_run", args.gpus_per_run), ("time_limit_min", args.time_limit))
               if v is not None}
    if args.executor in (None, "local"):
        if cluster:
            raise ValueError(f"{sorted(cluster)} are options of a cluster executor: add --executor slurm")
        return {} if args.executor is None else {"executor": "local"}
    # a cluster job starts its own task per GPU: the profile's launcher (torchrun) is for one machine
    return {"executor": args.executor, "launcher": "", **({"cluster": cluster} if cluster else {})}


def main_study(args) -> int:
    out_root = outputs_root()
    try:
        plan = plan_study(args.profile, args.only, out_root, executor_settings(args))
    except (ValueError, FileNotFoundError) as e:      # the profile's inputs: nothing has run
        print(f"vlstudy study: {e}", file=sys.stderr)
        return 2
    records = []
    try:
        run_study(args.profile, args.only, out_root, plan=plan, records=records,
                  log=lambda *a, **k: print(*a, file=sys.stderr, **k))
    except KeyboardInterrupt:
        done = [r["notebook"] for r in records]
        stopped = next((n for n in plan if n not in done), done[-1] if done else "?")
        print(f"vlstudy study: interrupted in notebook {stopped!r}"
              + (f", after {', '.join(done)}" if done else "")
              + f". Finished runs are kept in {out_root / 'runs'}; the same command resumes the study: "
              "it reads them back and trains only what is unfinished, a run cut short from its last "
              "checkpoint.", file=sys.stderr)
        return 130
    from .report import build_report
    report = build_report(args.profile, out_root)          # failed notebooks show in it too
    print(f"report: {report['html']} (and {report['markdown'].name})", file=sys.stderr)
    failed = [r["notebook"] for r in records if r["status"] != "ok"]
    if failed:
        print(f"failed notebooks: {failed}", file=sys.stderr)
        return 1
    if args.reference:
        for path in sorted((out_root / args.profile / "notebooks").glob("*.ipynb")):
            write_reference(path, Path(args.reference) / path.name)
    return 0
