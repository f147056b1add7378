"""Mutations of the decision rules, and which calibration test catches each.

    .venv/bin/python tests/mutations.py            # every mutation (about 2 minutes each)
    .venv/bin/python tests/mutations.py holm-off-by-one

Each mutation is one textual change to ``vlstudy`` (a rule a careless edit could make). The
script copies the package and the statistical tests to a temporary folder, applies the
change, and runs only the tests marked ``calibration`` (error rates and estimates on
simulated studies, not formulas pinned by hand). A mutation is *caught* when some of them
fail; the script lists which, and exits 1 if one survives. Not collected by pytest (no
``test_`` prefix): it runs pytest itself, once per mutation.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ("tests/conftest.py", "tests/test_stats.py", "tests/test_verdicts.py", "tests/test_variance.py")

# name: (file, text to replace, replacement, what it does)
MUTATIONS = {
    "tost-at-10-percent": (
        "vlstudy/verdicts.py", "    if p_claimed < ALPHA:\n",
        '    if p_claimed < (ALPHA if kind == "greater" else 2 * ALPHA):\n',
        "the verdicts' TOST and non-superiority tests at one-sided 10 % (as at 26ac999)"),
    "block-term-halved": (
        "vlstudy/stats.py", "            variances.append(size * _sample_variance(z))\n",
        "            variances.append(size * _sample_variance(z) / 2)\n",
        "the block-variance term halved"),
    "satterthwaite-at-2-blocks": (
        "vlstudy/stats.py", '        if combine == "satterthwaite" or len(kept) <= 1:\n',
        '        if combine == "satterthwaite" or len(kept) <= 1 or self.blocks == 2:\n',
        "one t with Satterthwaite's df instead of summed margins at 2 blocks"),
    "test-term-per-arm": (
        "vlstudy/stats.py", "    return max(0.0, (_sample_variance(contrast) - counted) / n), float(n - 1), counted / n\n",
        "    return max(0.0, (sum(w * w * _sample_variance(arm.example_means()) for arm, w in entries) - counted)"
        " / n), float(n - 1), counted / n\n",
        "the test term from each arm's per-example variance, not the paired per-example differences"),
    "test-term-counts-noise-twice": (
        "vlstudy/stats.py", "    return max(0.0, (_sample_variance(contrast) - counted) / n), float(n - 1), counted / n\n",
        "    return max(0.0, _sample_variance(contrast) / n), float(n - 1), counted / n\n",
        "var(D)/n without MS_E/(nK) removed (as at 26ac999)"),
    "pooled-as-independent": (
        "vlstudy/stats.py", "    return _contrast_evidence(entries, list(test_sets.values())).interval(level, combine)\n",
        "    singles = [t_interval(a, b, level=level, combine=combine) for a, b, _, _ in pairs]\n"
        "    variance = sum(single.se ** 2 for single in singles) / count ** 2\n"
        "    return _Evidence(sum(w * arm.mean for arm, w in entries), (variance,), (min(s.df for s in singles),),\n"
        "                     False, min(s.blocks for s in singles)).interval(level, combine)\n",
        "pooled comparisons always taken as independent"),
    "pooled-test-term-dropped": (
        "vlstudy/stats.py", "    return _contrast_evidence(entries, list(test_sets.values())).interval(level, combine)\n",
        "    return _contrast_evidence(entries, []).interval(level, combine)\n",
        "the pooled effect without its test-sampling terms"),
    "partly-met-blocks-as-groups": (
        "vlstudy/stats.py", "    if len(common) >= 2 and not all(is_paired(weighted[0], arm) for arm in weighted):\n",
        "    if False:\n",
        "arms whose blocks partly meet combined group by group instead of compared where they meet"),
    "holm-off-by-one": (
        "vlstudy/stats.py", "(m - np.arange(m)) * p[order]",
        "np.maximum(1, m - 1 - np.arange(m)) * p[order]",
        "Holm's multipliers one too small"),
}


def mutate(workdir: Path, name: str) -> None:
    path, old, new, _ = MUTATIONS[name]
    target = workdir / path
    text = target.read_text()
    if text.count(old) != 1:
        raise SystemExit(f"mutation {name}: its text occurs {text.count(old)} times in {path}, not once; update it")
    target.write_text(text.replace(old, new))


def failing_tests(name: str | None) -> list[str]:
    """Run the calibration tests on a copy of the package (mutated by ``name``); the failures."""
    with tempfile.TemporaryDirectory(prefix="vlstudy-mutant-") as tmp:
        workdir = Path(tmp)
        shutil.copytree(ROOT / "vlstudy", workdir / "vlstudy", ignore=shutil.ignore_patterns("__pycache__"))
        (workdir / "tests").mkdir()
        for test in TESTS:
            shutil.copy(ROOT / test, workdir / test)
        shutil.copy(ROOT / "pyproject.toml", workdir)
        if name:
            mutate(workdir, name)
        # cwd first on sys.path (python -m): the copy, not the installed package, is imported
        done = subprocess.run([sys.executable, "-m", "pytest", "-m", "calibration", "-q", "-p", "no:cacheprovider",
                               "-o", "addopts=", "-rf", *TESTS[1:]], cwd=workdir, capture_output=True, text=True)
        failed = re.findall(r"^FAILED (\S+)", done.stdout, flags=re.M)
        if done.returncode not in (0, 1) or (done.returncode == 1 and not failed):
            raise SystemExit(f"pytest did not run cleanly for {name or 'no mutation'}:\n{done.stdout}\n{done.stderr}")
        return failed


def _short(tests: list[str]) -> str:
    """test ids as "name[2-1, 3-1]" per test function, its file dropped."""
    cases: dict[str, list[str]] = {}
    for test in tests:
        function, _, case = test.split("::")[-1].partition("[")
        cases.setdefault(function, []).append(case.rstrip("]"))
    return ", ".join(f + (f"[{', '.join(c)}]" if any(c) else "") for f, c in cases.items())


def main(names: list[str]) -> int:
    unknown = sorted(set(names) - set(MUTATIONS))
    if unknown:
        raise SystemExit(f"unknown mutation(s) {unknown}; known: {sorted(MUTATIONS)}")
    baseline = failing_tests(None)
    if baseline:
        raise SystemExit(f"the calibration tests fail without any mutation: {baseline}")
    survived = []
    for name in names or list(MUTATIONS):
        failed = failing_tests(name)
        print(f"{name}: {MUTATIONS[name][3]}\n    " + (f"caught by {len(failed)}: " + _short(failed) if failed
                                                       else "SURVIVED"), flush=True)
        survived += [] if failed else [name]
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
