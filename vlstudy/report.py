"""The study's report: one page gathering every research question's tables, figures and
the paper's claims with our decisions, as Markdown and as a self-contained HTML page.

It opens with a scorecard (every claim C1–C25: the paper's statement, what it needs, the
comparison that decides it with its interval, the decision and the effect this budget could
detect, and how many comparisons hold) and one forest
plot per notebook of every comparison's interval; the sections follow. It reads only what
the notebooks wrote under ``outputs/<profile>/``: the run record of each executed notebook
(``notebooks/*.json``), its tables (``tables/<notebook>_*.csv``) and figures
(``figures/<notebook>*.png``). Numbers are rounded for reading; the CSVs stay linked.
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

import nbformat
import pandas as pd

from .paper import claims as paper_claims
from .paths import atomic_write_text, outputs_root, read_json
from .profiles import notebook_paths
from .verdicts import readable

CLAIM_COLUMNS = ["claim", "statement", "needs", "effect", "interval", "mde", "deciding comparison", "holding",
                 "decision", "on the continuous score", "reason"]
EVIDENCE_COLUMNS = ["comparison", "claimed side", "other side", "difference", "interval", "p", "mde",
                    "outcome", "after Holm", "for the claim", "continuous score", "continuous outcome", "directions",
                    "bootstrap interval", "reason"]
# Tables too long for a page (every run, every weight matrix): linked, not shown.
LINKED_ONLY = ("_runs", "_examples", "_drift")
SCORECARD_NOTE = ("needs: the claim's logic, from the paper's words (all: every comparison must hold at 5 % on "
                  "its own, and one reversed after Holm's correction contradicts it; most: a majority after Holm); "
                  "effect: the deciding comparison's difference (claimed side minus other side) with its 95 % "
                  "interval: for 'all' the weakest, for 'most' the majority's weakest, for a contradiction the "
                  "strongest against; mde: the effect this budget detects with 80 % power in that comparison; "
                  "holding: comparisons that hold (at 5 % for 'all', after Holm for 'most'); on the continuous "
                  "score: the same claim decided on each example's log-likelihood instead of accuracy (the claims "
                  "are judged on accuracy, the paper's metric). Decided on blocks (pretraining seeds) with the test "
                  "set's sampling variance added; see docs/evidence.md.")
EVIDENCE_TITLE = "Our evidence, comparison by comparison"
EVIDENCE_NOTE = ("each side's mean ± sd over blocks (number of blocks), the difference with its 95 % t-interval "
                 "(blocks, paired, plus test sampling), the minimum detectable effect, the outcome alone and after "
                 "Holm within the claim, what it counts as in the claim's logic, the same comparison on the "
                 "continuous score (log-likelihood per example, nats) and whether the two agree in direction, and "
                 "the hierarchical bootstrap's interval for reference")


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
        record = read_json(record_path, "notebook record", missing_ok=True)
        tables = sorted((base / "tables").glob(f"{name}_*.csv"))
        decisions = [t for t in tables if t.stem in (f"{name}_claims", f"{name}_comparisons")]
        frames = {t.stem.rsplit("_", 1)[1]: pd.read_csv(t) for t in decisions}
        if "claims" in frames and "decision" not in frames["claims"]:   # an older version's verdicts:
            frames = {}                                                 # linked, not read as decisions
        shown = [t for t in tables if t not in decisions and not t.stem.endswith(LINKED_ONLY)]
        out.append({"name": name, "title": _title(path), "record": record,
                    "claims": frames.get("claims"), "evidence": frames.get("comparisons"),
                    "tables": [(t, pd.read_csv(t)) for t in shown],
                    "linked": [t for t in tables if t.stem.endswith(LINKED_ONLY) or (t in decisions and not frames)],
                    "figures": sorted((base / "figures").glob(f"{name}*.png"))})
    return out


def _status(record: dict | None) -> str:
    if record is None:
        return "not run"
    return f"{record['status']} in {record['seconds']:.0f} s" + (
        f" (cell {record.get('cell')}: {record.get('error')})" if record["status"] != "ok" else "")


def _number(v, digits: int = 2) -> str:
    """A number for reading: rounded, a dash where there is none."""
    if v is None or (isinstance(v, float) and (v != v)):
        return "—"
    if isinstance(v, (int, float)):
        return "∞" if v == float("inf") else f"{v:.{digits}f}"
    return str(v)


def _interval(low, high, unit: str = "") -> str:
    if low != low or high != high:
        return "—"
    return f"[{low:+.2f}, {high:+.2f}]" + (f" {unit}" if unit else "")


def _or_dash(value) -> str:
    return value if isinstance(value, str) and value else "—"


def _text(df: pd.DataFrame, column: str) -> list[str]:
    """A text column, blank where missing (an older version's tables lack ``needs``, ``deciding``)."""
    return [v if isinstance(v, str) else "" for v in (df[column] if column in df else [None] * len(df))]


def _claims(df: pd.DataFrame) -> pd.DataFrame:
    """A notebook's claims for reading."""
    out = pd.DataFrame({
        "claim": df["claim"], "statement": df["statement"], "needs": _text(df, "needs"),
        "effect": [_number(v) for v in df["effect"]],
        "interval": [_interval(lo, hi, u if isinstance(u, str) else "") for lo, hi, u in zip(df["low"], df["high"], df["unit"])],
        "mde": [_number(v) for v in df["mde"]], "deciding comparison": _text(df, "deciding"),
        "holding": [f"{h} of {n}" for h, n in zip(df["holding"], df["comparisons"])],
        "decision": df["decision"], "on the continuous score": [v or "—" for v in _text(df, "continuous decision")],
        "reason": [r if isinstance(r, str) else "" for r in df["reason"]]})
    return out[CLAIM_COLUMNS]


def _evidence(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame({
        "comparison": [f"{c} {x}" for c, x in zip(df["claim"], df["comparison"])],
        "claimed side": df["claimed side"], "other side": df["other side"],
        "difference": [_number(v) for v in df["difference"]],
        "interval": [_interval(lo, hi) for lo, hi in zip(df["low"], df["high"])],
        "p": [_number(v, 3) for v in df["p"]], "mde": [_number(v) for v in df["mde"]],
        "outcome": df["outcome"], "after Holm": [h if isinstance(h, str) else "—" for h in df["after Holm"]],
        "for the claim": [h or "—" for h in _text(df, "for the claim")],
        "continuous score": [_continuous(r) for _, r in df.iterrows()],
        "continuous outcome": [v or "—" for v in _text(df, "continuous outcome")],
        "directions": [v or "—" for v in _text(df, "directions")],
        "bootstrap interval": [_interval(lo, hi) for lo, hi in zip(df["bootstrap low"], df["bootstrap high"])],
        "reason": [r if isinstance(r, str) else "" for r in df["reason"]]})
    return out[EVIDENCE_COLUMNS]


def _continuous(row) -> str:
    """A comparison on the continuous score for reading: "+0.012 [-0.003, +0.027] nats"."""
    value = row.get("continuous", float("nan"))
    if not isinstance(value, float) or value != value:
        return "—"
    low, high = row.get("continuous low", float("nan")), row.get("continuous high", float("nan"))
    return f"{value:+.3f}" + ("" if low != low else f" [{low:+.3f}, {high:+.3f}]") + " nats"


def scorecard(sections: list[dict]) -> pd.DataFrame:
    """Every claim C1–C25 in one table: the paper's statement, what it needs, the deciding
    comparison's effect with its interval, the decision, the minimum detectable effect and how
    many comparisons hold. A claim measured by two notebooks (C21) is shown from the one with
    more comparisons."""
    found: dict[str, tuple[str, pd.Series]] = {}
    for s in sections:
        if s["claims"] is None:
            continue
        for _, row in s["claims"].iterrows():
            held = found.get(row["claim"])
            if held is None or row["comparisons"] > held[1]["comparisons"]:
                found[row["claim"]] = (s["name"], row)
    rows = []
    for _, c in paper_claims().iterrows():
        if c["id"] in found:
            where, r = found[c["id"]]
            unit = r["unit"] if isinstance(r["unit"], str) else ""
            deciding = r.get("deciding")
            rows.append({"claim": c["id"], "the paper says": c["claim"], "needs": c["needs"],
                         "decision": r["decision"], "on the continuous score": _or_dash(r.get("continuous decision")),
                         "holding": f"{r['holding']} of {r['comparisons']}",
                         "deciding comparison": deciding if isinstance(deciding, str) else "—",
                         "its effect": _number(r["effect"]) + (f" {unit}" if r["effect"] == r["effect"] else ""),
                         "95 % interval": _interval(r["low"], r["high"]), "mde": _number(r["mde"]),
                         "notebook": where, "reason": r["reason"] if isinstance(r["reason"], str) else ""})
        else:
            rows.append({"claim": c["id"], "the paper says": c["claim"], "needs": c["needs"],
                         "decision": "not measured", "on the continuous score": "—", "holding": "—", "deciding comparison": "—", "its effect": "—",
                         "95 % interval": "—", "mde": "—", "notebook": "—",
                         "reason": "no notebook of this profile measured it"})
    return pd.DataFrame(rows)


# The profile's own decisions, shown before the paper's claims: (table, title, what it is)
HEADLINE = (("domain_match_primary", "Primary comparisons",
             "named in the profile before the study ran and decided as one family (95 % t-interval on blocks "
             "plus test sampling, Holm's correction over all of them)"),
            ("domain_match_sensitivity", "Does pretraining show in this world?",
             "per model, task and training: the largest gain of a pretraining set over direct training, and "
             "the sets whose gain holds after Holm over the cell's sets"))


def headline(base: Path) -> list[tuple[str, str, pd.DataFrame]]:
    """The primary comparisons and the sensitivity check, where the profile's notebooks wrote them."""
    out = []
    for stem, title, note in HEADLINE:
        path = base / "tables" / f"{stem}.csv"
        if path.exists():
            out.append((title, note, readable(pd.read_csv(path))))
    return out


def world_line(sections: list[dict]) -> str:
    """Which world the verdicts were computed on: the confirmation world or a calibration one."""
    from .world.build import seed_role
    roles = {"confirmation": "the confirmation world: nothing was tuned on it",
             "calibration": "a calibration world: its world and recipe were tuned on it, so these are not "
                            "confirmation evidence",
             "other": "neither a calibration nor the confirmation world"}
    seeds = {(s["record"]["parameters"].get("world", "?"), s["record"]["parameters"].get("world_seed"))
             for s in sections if s["record"]}
    said = []
    for world, seed in sorted(seeds, key=str):
        said.append(f"world `{world}` at seed {0 if seed is None else seed} ({roles[seed_role(seed)]})")
    return "Computed on " + "; ".join(said) + "." if said else ""


def _tally(card: pd.DataFrame) -> str:
    counts = card["decision"].value_counts()
    return ", ".join(f"{counts.get(d, 0)} {d}" for d in ("supported", "contradicted", "undecided", "not measured"))


def forest_figures(sections: list[dict], base: Path) -> list[Path]:
    """One forest plot per notebook with comparisons, written beside the notebooks' figures."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .plots import forest, save_figure, set_theme
    set_theme()
    paths = []
    for s in sections:
        df = s["evidence"]
        if df is None or df.empty:
            continue
        fig = forest(df, title=s["title"])
        paths.append(save_figure(fig, f"report_forest_{s['name']}", base / "figures")[0])
        plt.close(fig)
    return paths


def to_markdown(profile: str, sections: list[dict], base: Path, card: pd.DataFrame, forests: list[Path]) -> str:
    lines = [f"# vlstudy report: profile `{profile}`", "", world_line(sections), ""]
    for title, note, df in headline(base):
        lines += [f"## {title}", "", f"*{note}.*", "", df.to_markdown(index=False), ""]
    lines += ["## Scorecard", "", f"*{_tally(card)}.* {SCORECARD_NOTE}", "", card.to_markdown(index=False), ""]
    lines += [f"![{f.stem}]({f.relative_to(base).as_posix()})" for f in forests] + [""]
    for s in sections:
        lines += [f"## {s['title']}", "", f"*Notebook `{s['name']}`: {_status(s['record'])}.*", ""]
        if s["claims"] is not None:
            lines += ["**The paper's claims, and what our run says**", "",
                      _claims(s["claims"]).to_markdown(index=False), ""]
        if s["evidence"] is not None:
            lines += [f"**{EVIDENCE_TITLE}** ({EVIDENCE_NOTE})", "", _evidence(s["evidence"]).to_markdown(index=False), ""]
        for path, df in s["tables"]:
            lines += [f"**{path.stem}**", "", readable(df).to_markdown(index=False), ""]
        lines += [f"![{f.stem}]({f.relative_to(base).as_posix()})" for f in s["figures"]]
        if s["linked"]:
            lines += ["", "Full tables: " + ", ".join(
                f"[{t.stem}]({t.relative_to(base).as_posix()})" for t in s["linked"])]
        lines.append("")
    return "\n".join(lines)


def to_html(profile: str, sections: list[dict], base: Path, card: pd.DataFrame, forests: list[Path]) -> str:
    """One self-contained file: figures are embedded, so the page can be mailed or archived."""
    esc = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>vlstudy report: {esc(profile)}"
             "</title><style>body{font-family:sans-serif;max-width:72em;margin:auto;padding:1em}"
             "table{border-collapse:collapse;font-size:90%;margin:.5em 0 1.5em}"
             "td,th{border:1px solid #ccc;padding:2px 6px}img{max-width:100%}</style></head><body>",
             f"<h1>vlstudy report: profile <code>{esc(profile)}</code></h1>", f"<p>{esc(world_line(sections))}</p>"]
    for title, note, df in headline(base):
        parts += [f"<h2>{esc(title)}</h2><p><em>{esc(note)}.</em></p>", df.to_html(index=False, border=0)]
    parts += [f"<h2 id='scorecard'>Scorecard</h2><p><em>{esc(_tally(card))}.</em> {esc(SCORECARD_NOTE)}</p>",
             card.to_html(index=False, border=0)]
    parts += [_img(f) for f in forests]
    for s in sections:
        parts += [f"<h2 id='{esc(s['name'])}'>{esc(s['title'])}</h2>",
                  f"<p><em>Notebook <code>{esc(s['name'])}</code>: {esc(_status(s['record']))}.</em></p>"]
        if s["claims"] is not None:
            parts += ["<h3>The paper's claims, and what our run says</h3>",
                      _claims(s["claims"]).to_html(index=False, border=0)]
        if s["evidence"] is not None:
            parts += [f"<h3>{EVIDENCE_TITLE}</h3><p>{esc(EVIDENCE_NOTE)}.</p>",
                      _evidence(s["evidence"]).to_html(index=False, border=0)]
        for path, df in s["tables"]:
            parts += [f"<h3>{esc(path.stem)}</h3>", readable(df).to_html(index=False, border=0)]
        parts += [_img(f) for f in s["figures"]]
        if s["linked"]:
            parts.append("<p>Full tables: " + ", ".join(
                f"<a href='{esc(t.relative_to(base).as_posix())}'>{esc(t.stem)}</a>" for t in s["linked"]) + "</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f"<p><img alt='{html.escape(path.stem)}' src='data:image/png;base64,{data}'></p>"


def build_report(profile: str, root: Path | None = None) -> dict[str, Path]:
    """Write ``report.md`` and ``report.html`` in ``outputs/<profile>/`` and return their paths."""
    base = Path(root or outputs_root()) / profile
    if not base.is_dir():
        raise FileNotFoundError(f"no outputs for profile {profile!r} at {base}: run the study first")
    sections = _sections(base)
    card = scorecard(sections)
    forests = forest_figures(sections, base)
    paths = {"markdown": base / "report.md", "html": base / "report.html"}
    atomic_write_text(paths["markdown"], to_markdown(profile, sections, base, card, forests))
    atomic_write_text(paths["html"], to_html(profile, sections, base, card, forests))
    return paths
