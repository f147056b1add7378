"""The study's report: one page gathering every research question's tables, figures and
the paper's claims with our verdicts, as Markdown and as a self-contained HTML page.

It reads only what the notebooks wrote under ``outputs/<profile>/``: the run record of each
executed notebook (``notebooks/*.json``), its tables (``tables/<notebook>_*.csv``) and
figures (``figures/<notebook>*.png``). A notebook's claims table (``<notebook>_claims.csv``)
goes first in its section, then the table beside the paper's, then the figures.
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import nbformat
import pandas as pd

from .paths import atomic_write_text, outputs_root
from .runner import notebook_paths

CLAIM_COLUMNS = ["claim", "statement", "holding", "comparisons", "mean difference", "verdict"]
# Tables too long for a page (every run, every weight matrix): linked, not shown.
LINKED_ONLY = ("_runs", "_examples", "_drift")
EVIDENCE_TITLE = "Our evidence, comparison by comparison"
EVIDENCE_NOTE = ("each side's mean ± sd over seeds (number of seeds), their difference and its standard "
                 "error; a comparison holds when the difference exceeds twice its standard error")


def _title(notebook: Path) -> str:
    """The notebook's first Markdown heading (its research question)."""
    for cell in nbformat.read(str(notebook), as_version=4).cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return notebook.stem


def _sections(base: Path) -> list[dict]:
    out = []
    for name, path in notebook_paths().items():
        record_path = base / "notebooks" / f"{path.stem}.json"
        record = json.loads(record_path.read_text()) if record_path.exists() else None
        tables = sorted((base / "tables").glob(f"{name}_*.csv"))
        claims = [t for t in tables if t.stem == f"{name}_claims"]
        evidence = [t for t in tables if t.stem == f"{name}_comparisons"]
        shown = [t for t in tables if t not in claims + evidence and not t.stem.endswith(LINKED_ONLY)]
        out.append({"name": name, "title": _title(path), "record": record,
                    "claims": pd.read_csv(claims[0]) if claims else None,
                    "evidence": pd.read_csv(evidence[0]).round(2) if evidence else None,
                    "tables": [(t, pd.read_csv(t)) for t in shown],
                    "linked": [t for t in tables if t.stem.endswith(LINKED_ONLY)],
                    "figures": sorted((base / "figures").glob(f"{name}*.png"))})
    return out


def _status(record: dict | None) -> str:
    if record is None:
        return "not run"
    return f"{record['status']} in {record['seconds']:.0f} s" + (
        f" (cell {record.get('cell')}: {record.get('error')})" if record["status"] != "ok" else "")


def _claims(df: pd.DataFrame) -> pd.DataFrame:
    return df[[c for c in CLAIM_COLUMNS if c in df.columns]]


def to_markdown(profile: str, sections: list[dict], base: Path) -> str:
    lines = [f"# vlstudy report: profile `{profile}`", ""]
    for s in sections:
        lines += [f"## {s['title']}", "", f"*Notebook `{s['name']}`: {_status(s['record'])}.*", ""]
        if s["claims"] is not None:
            lines += ["**The paper's claims, and what our run says**", "",
                      _claims(s["claims"]).to_markdown(index=False), ""]
        if s["evidence"] is not None:
            lines += [f"**{EVIDENCE_TITLE}** ({EVIDENCE_NOTE})", "", s["evidence"].to_markdown(index=False), ""]
        for path, df in s["tables"]:
            lines += [f"**{path.stem}**", "", df.to_markdown(index=False), ""]
        lines += [f"![{f.stem}]({f.relative_to(base).as_posix()})" for f in s["figures"]]
        if s["linked"]:
            lines += ["", "Full tables: " + ", ".join(
                f"[{t.stem}]({t.relative_to(base).as_posix()})" for t in s["linked"])]
        lines.append("")
    return "\n".join(lines)


def to_html(profile: str, sections: list[dict], base: Path) -> str:
    """One self-contained file: figures are embedded, so the page can be mailed or archived."""
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>vlstudy report: {esc(profile)}"
             "</title><style>body{font-family:sans-serif;max-width:72em;margin:auto;padding:1em}"
             "table{border-collapse:collapse;font-size:90%;margin:.5em 0 1.5em}"
             "td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:100%}</style></head><body>",
             f"<h1>vlstudy report: profile <code>{esc(profile)}</code></h1>"]
    for s in sections:
        parts += [f"<h2 id='{esc(s['name'])}'>{esc(s['title'])}</h2>",
                  f"<p><em>Notebook <code>{esc(s['name'])}</code>: {esc(_status(s['record']))}.</em></p>"]
        if s["claims"] is not None:
            parts += ["<h3>The paper's claims, and what our run says</h3>",
                      _claims(s["claims"]).to_html(index=False, border=0)]
        if s["evidence"] is not None:
            parts += [f"<h3>{EVIDENCE_TITLE}</h3><p>{esc(EVIDENCE_NOTE)}.</p>", s["evidence"].to_html(index=False, border=0)]
        for path, df in s["tables"]:
            parts += [f"<h3>{esc(path.stem)}</h3>", df.to_html(index=False, border=0)]
        for f in s["figures"]:
            data = base64.b64encode(f.read_bytes()).decode()
            parts.append(f"<p><img alt='{esc(f.stem)}' src='data:image/png;base64,{data}'></p>")
        if s["linked"]:
            parts.append("<p>Full tables: " + ", ".join(
                f"<a href='{esc(t.relative_to(base).as_posix())}'>{esc(t.stem)}</a>" for t in s["linked"]) + "</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def build_report(profile: str, root: Path | None = None) -> dict[str, Path]:
    """Write ``report.md`` and ``report.html`` in ``outputs/<profile>/`` and return their paths."""
    base = Path(root or outputs_root()) / profile
    if not base.is_dir():
        raise FileNotFoundError(f"no outputs for profile {profile!r} at {base}: run the study first")
    sections = _sections(base)
    paths = {"markdown": base / "report.md", "html": base / "report.html"}
    atomic_write_text(paths["markdown"], to_markdown(profile, sections, base))
    atomic_write_text(paths["html"], to_html(profile, sections, base))
    return paths
