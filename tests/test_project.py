"""The project's set-up: README commands, environment.yml vs pyproject, profiles vs notebooks."""
import json
import tomllib
from pathlib import Path

import nbformat
import papermill as pm
import pytest
import yaml

from vlstudy import profiles, runner
from vlstudy.paper import claims, table
from vlstudy.world.build import CONFIRMATION_SEED

ROOT = Path(__file__).resolve().parents[1]


def test_readme_starts_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()[:8]
    assert any(line.startswith("make study") for line in lines)
    assert any(line.startswith("make test") for line in lines)
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_environment_yml_mirrors_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = project["project"]["optional-dependencies"]
    installs = [p for p in pip if p.startswith("-e .")]
    assert installs == ["-e .[dev]"] and "dev" in extras        # the package, with every extra
    assert set(extras["dev"][0].split("[")[1].rstrip("]").split(",")) == set(extras) - {"dev"}
    makefile = (ROOT / "Makefile").read_text()
    torch_pin = next(p for p in pip if p.startswith("torch"))
    assert f"TORCH  ?= {torch_pin}" in makefile                  # same CPU wheel as `make setup`
    assert any(d.startswith("torch>=") for d in project["project"]["dependencies"])


def test_notebooks_use_the_python3_kernel_and_one_parameters_cell():
    nbs = runner.notebook_paths()
    assert "world_tour" in nbs
    for name, path in nbs.items():
        nb = nbformat.read(str(path), as_version=4)
        assert nb.metadata.kernelspec.name == "python3", name
        tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, name
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
            f"{name}: source notebooks are committed without outputs"


@pytest.mark.parametrize("profile", ["smoke", "small", "full", "paper"])
def test_every_profile_fits_every_notebook(profile, monkeypatch):
    monkeypatch.setenv("VLSTUDY_PAPER_DATA", "/data/prepared")
    monkeypatch.setenv("VLSTUDY_BERT", "/models/bert-base-uncased")
    for name, path in runner.notebook_paths().items():
        params = runner.notebook_parameters(profile, name, path)
        assert params["profile"] == profile
        if profile == "paper" and name in ("world_tour", "domain_map"):   # synthetic by nature
            assert params["world"] == "full"
        elif profile == "paper":
            from vlstudy.study import Recipe
            recipe = Recipe.from_params(params)
            assert (recipe.world, recipe.bert_dir, recipe.max_grad_norm) == \
                ("/data/prepared", "/models/bert-base-uncased", 0)


def test_profile_environment_variables_must_be_set(monkeypatch):
    monkeypatch.delenv("VLSTUDY_PAPER_DATA", raising=False)
    with pytest.raises(ValueError, match=r"paper\.yaml: common: world: '\$\{VLSTUDY_PAPER_DATA\}' names an "
                                         "environment variable that is not set"):
        runner.load_profile("paper")


def test_unknown_parameter_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump(
        {"common": {"world": "smoke"}, "notebooks": {"world_tour": {"exmaples_per_domain": 2}}}))
    monkeypatch.setattr(profiles, "params_dir", lambda: tmp_path)
    with pytest.raises(ValueError, match=r"parameter\(s\) \['exmaples_per_domain'\]"):
        runner.run_study("typo", out_root=tmp_path)
    (tmp_path / "stray.yaml").write_text(yaml.safe_dump({"notebooks": {"no_such": {}}}))
    with pytest.raises(ValueError, match="do not exist"):
        runner.run_study("stray", out_root=tmp_path)
    with pytest.raises(ValueError, match="unknown profile 'nope'"):
        runner.run_study("nope", out_root=tmp_path)
    with pytest.raises(ValueError, match=r"no notebook\(s\) \['tour'\]"):
        runner.run_study("typo", only=["tour"], out_root=tmp_path)
    assert not list(tmp_path.glob("**/*.ipynb"))               # nothing ran


def test_references_match_their_notebooks():
    """tests/reference holds the smoke run of every notebook: regenerate with `make reference`."""
    refs = {p.stem: p for p in (ROOT / "tests" / "reference").glob("*.ipynb")}
    for name, path in runner.notebook_paths().items():
        assert path.stem in refs, f"no nbval reference for {path.name}: run `make reference`"
        src = [c.source for c in nbformat.read(str(path), as_version=4).cells]
        ref = [c.source for c in nbformat.read(str(refs[path.stem]), as_version=4).cells
               if "injected-parameters" not in c.metadata.get("tags", [])]
        assert src == ref, f"tests/reference/{path.name} is stale: run `make reference`"


def test_paper_data():
    t1 = table("table1_finetune")
    assert {"pretrained_on", "model", "vqa_d_acc"} <= set(t1.columns) and len(t1) == 8
    c = claims()
    assert list(c["id"]) == [f"C{i}" for i in range(1, 26)]
    # each claim's logic, read from the paper's words: most need every comparison
    needs = c.set_index("id")["needs"]
    assert needs[["C10", "C21"]].eq("most").all() and needs["C13"] == "rankings"
    assert (needs.drop(["C10", "C21", "C13"]) == "all").all() and c["words"].str.len().gt(10).all()
    with pytest.raises(KeyError):
        table("table9")


def test_run_record_written(tmp_path, capfd, monkeypatch, request):
    import shutil
    import tempfile
    # short, as the temp folder a kernel's socket paths (at most ~104 bytes) are made under:
    # under pytest-xdist, tmp_path is long enough that _socket_folder falls back to /tmp
    sockets = Path(tempfile.mkdtemp(prefix="vlstudy-test-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(sockets, ignore_errors=True))
    monkeypatch.setattr(tempfile, "tempdir", str(sockets))
    recs = runner.run_study("smoke", only=["world_tour"], out_root=tmp_path, log=lambda *a, **k: None)
    assert recs[0]["status"] == "ok"
    console = capfd.readouterr().err            # the kernel's own stderr: over Unix sockets, no TCP warning
    assert "without encryption" not in console and "KeyboardInterrupt" not in console
    assert not list(sockets.iterdir())          # the kernel's socket folder removed
    import asyncio
    never_started = runner._kernel_manager_class()(kernel_name="python3")
    assert len(list(sockets.iterdir())) == 1
    asyncio.run(never_started.cleanup_resources())      # nbclient's call for a dead kernel
    assert not list(sockets.iterdir())
    rec = json.loads((tmp_path / "smoke" / "notebooks" / "01_world_tour.json").read_text())
    assert rec["parameters"]["world"] == "smoke" and rec["seconds"] > 0

    # the report gathers what the notebooks wrote; a notebook not run says so
    import pandas as pd
    from vlstudy.report import build_report
    claims = pd.DataFrame([{"claim": "C1", "section": "3.1", "statement": "in-domain wins", "needs": "all",
                            "effect": 1.5, "low": 0.0497741, "high": 2.9, "unit": "points", "mde": 2.2,
                            "deciding": "VQA-D: VisualBERT COCO > VisualBERT CC-small", "holding": 4,
                            "comparisons": 4, "decision": "supported", "reason": "4 of 4 hold at 5 %; all 4 needed"}])
    claims.to_csv(tmp_path / "smoke" / "tables" / "domain_match_claims.csv", index=False)
    pd.DataFrame([{"claim": "C1", "comparison": "VQA-D: VisualBERT COCO > VisualBERT CC-small",
                   "claimed side": "54.40 ± 2.41 (6)", "other side": "51.80 ± 1.50 (6)", "difference": 2.6,
                   "low": 0.3, "high": 4.9, "unit": "points", "p": 0.01, "mde": 3.1, "blocks": 6,
                   "outcome": "holds", "after Holm": "holds", "bootstrap low": 0.8, "bootstrap high": 4.4,
                   "reason": ""}]).to_csv(tmp_path / "smoke" / "tables" / "domain_match_comparisons.csv", index=False)
    paths = build_report("smoke", tmp_path)
    md, page = paths["markdown"].read_text(), paths["html"].read_text()
    assert "## World tour: the embedded synthetic world" in md
    world_section, match_section = md.split("## ")[2], md.split("## ")[3]
    assert "ok in" in world_section and "world_tour_datasets" in world_section
    figures = [line[line.index("](") + 2:-1] for line in md.splitlines() if line.startswith("![")]
    assert figures and all((tmp_path / "smoke" / f).exists() for f in figures)
    assert "not run" in match_section and "4 of 4" in match_section and "supported" in match_section
    assert "Our evidence" in match_section and "54.40 ± 2.41 (6)" in match_section   # shown, not linked
    assert "[+0.05, +2.90] points" in md and "0.0497741" not in md and "| nan " not in md
    assert page.count("data:image/png;base64,") == len(figures) and "supported" in page
    scorecard = md.split("## ")[1]
    assert scorecard.startswith("Scorecard") and "1 supported, 0 contradicted, 0 undecided, 24 not measured" in scorecard
    assert "report_forest_domain_match" in scorecard
    with pytest.raises(FileNotFoundError, match="no outputs for profile"):
        build_report("full", tmp_path)


def test_runner_shows_one_line_per_finished_run():
    """The kernel's stderr arrives in arbitrary pieces; only the study's run lines pass."""
    from vlstudy.runner import RUN_LOG_PREFIX, _RunLines
    shown = []
    lines = _RunLines(lambda msg, flush=False: shown.append(msg))
    lines.write(f"UserWarning: something\n{RUN_LOG_PREFIX}1/2 finetune visual_bert vq")
    lines.write(f"a_d seed 0: 35 s\n{RUN_LOG_PREFIX}2/2 pretrain")
    assert shown == ["    1/2 finetune visual_bert vqa_d seed 0: 35 s"]
    lines.write(" vilbert coco\n")
    assert shown[-1] == "    2/2 pretrain vilbert coco"


def _run_parameters_cell(path, name, injected=None) -> dict:
    """What a kernel holds after a notebook's parameters cell, papermill's injected values
    (if any) and the first code cell's ``use_profile``: the JupyterLab path when nothing is
    injected."""
    import nbformat

    from vlstudy.parameters import use_profile
    nb = nbformat.read(str(path), as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    namespace = {}
    exec(cell.source, namespace)
    namespace.update(injected or {})
    use_profile(name, namespace)
    declared = pm.inspect_notebook(str(path))
    return {k: namespace[k] for k in declared}


def test_a_notebook_run_top_to_bottom_gets_the_small_profiles_parameters():
    """Opened in JupyterLab (nothing injected) every notebook resolves exactly the parameters
    `vlstudy study --profile small --only NAME` gives it; injected, the same; a value given
    explicitly (not the cell's default) wins over the profile."""
    for name, path in runner.notebook_paths().items():
        planned = runner.notebook_parameters("small", name, path)
        assert _run_parameters_cell(path, name) == planned, name
        assert _run_parameters_cell(path, name, injected=planned) == planned, name
    path = runner.notebook_paths()["domain_match"]
    mine = _run_parameters_cell(path, "domain_match", injected={"archs": ["vilbert"], "blocks": 3})
    assert mine["archs"] == ["vilbert"] and mine["blocks"] == 3 and mine["world_seed"] == CONFIRMATION_SEED
    smoke = _run_parameters_cell(path, "domain_match", injected={"profile": "smoke"})
    assert smoke == runner.notebook_parameters("smoke", "domain_match", path)
    assert smoke["model"] == "tiny" and smoke["batch_size"] == 16           # from smoke's common:


def test_common_carries_recipe_settings_but_not_a_key_no_one_declares(tmp_path, monkeypatch):
    (tmp_path / "mine.yaml").write_text("common:\n  world: smoke\n  frozen_lr: 0.01\n")
    (tmp_path / "odd.yaml").write_text("common:\n  world: smoke\n  examples_per_domian: 2\n")
    monkeypatch.setattr(profiles, "params_dir", lambda: tmp_path)
    paths = runner.notebook_paths()
    params = runner.notebook_parameters("mine", "transferability", paths["transferability"])
    assert params["recipe"] == {"frozen_lr": 0.01}                  # not declared there: into its recipe
    assert "recipe" not in runner.notebook_parameters("mine", "world_tour", paths["world_tour"])
    with pytest.raises(ValueError, match="common key 'examples_per_domian' is neither"):
        runner.notebook_parameters("odd", "world_tour", paths["world_tour"])


def test_an_interrupted_study_says_what_finished_and_that_the_command_resumes(monkeypatch, capsys):
    """Ctrl-C: one message and exit 130, not papermill's KeyboardInterrupt traceback."""
    from types import SimpleNamespace

    def interrupted(profile, only, out_root, plan, records, log):
        records.append({"notebook": "world_tour", "status": "ok"})
        raise KeyboardInterrupt
    monkeypatch.setattr(runner, "run_study", interrupted)
    args = SimpleNamespace(profile="smoke", only=["world_tour", "domain_match"], reference=None, executor=None,
                           partition=None, account=None, gpus_per_run=None, time_limit=None)
    assert runner.main_study(args) == 130
    err = capsys.readouterr().err
    assert "interrupted in notebook 'domain_match', after world_tour" in err
    assert "the same command resumes the study" in err and "Traceback" not in err


def _imports(package: Path) -> dict[str, set[str]]:
    """Each module or subpackage of ``package`` (``vlstudy.data``, ``vlstudy.spec``) → the
    others it imports, at the top or inside a function."""
    import ast
    group = lambda parts: ".".join(parts[:2])                      # noqa: E731 vlstudy.data.root → vlstudy.data
    edges: dict[str, set[str]] = {}
    for f in package.rglob("*.py"):
        parts = list(f.relative_to(package.parent).with_suffix("").parts)
        here = parts[:-1] if parts[-1] == "__init__" else parts
        pkg = here if parts[-1] == "__init__" else here[:-1]
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = pkg[:len(pkg) - node.level + 1] if node.level else []
                target = base + (node.module.split(".") if node.module else [])
                targets = [target + [a.name] if not node.module and node.level else target for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [a.name.split(".") for a in node.names]
            else:
                continue
            for t in targets:
                if t[:1] == ["vlstudy"] and len(t) > 1 and group(t) != group(here):
                    edges.setdefault(group(here), set()).add(group(t))
    return edges


def test_no_import_cycles_between_the_packages_modules():
    """The house reads world → data → models → runs → study → analysis with no arrow back: no
    module (or subpackage) imports, even lazily, one that imports it back."""
    edges = _imports(Path(__file__).parents[1] / "vlstudy")
    reach = {m: set(d) for m, d in edges.items()}
    changed = True
    while changed:                                   # transitive closure
        changed = False
        for m, seen in reach.items():
            more = set().union(*(reach.get(d, set()) for d in seen)) - seen
            if more:
                seen |= more
                changed = True
    cycles = sorted(m for m, seen in reach.items() if m in seen)
    assert not cycles, f"modules on an import cycle: {cycles}"
    assert "vlstudy.data" in edges["vlstudy.world"] and "vlstudy.spec" in reach["vlstudy.study"]  # it sees imports
