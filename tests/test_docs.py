"""The user guide holds together: README.md is a short front door, every relative link in it and in docs/ resolves
(to a file, and to a heading for `#anchor` links into markdown), the documented `make setup TORCH=...` reaches pip,
and the elmo-bench commands the README and docs/own-data.md show compose to valid configs."""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").glob("*.md"))
README_MAX_LINES = 165
QUICK_START_WITHIN = 60  # lines: the two quick-start commands are on the README's first screen

FENCE = re.compile(r"^(```|~~~).*?^\1[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$", re.M)


def without_code(text: str) -> str:
    """The text outside fenced blocks and code spans: a link or heading inside code is not one."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def github_slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: the rendered text lower-cased, punctuation but `-` and `_` dropped,
    each space a hyphen."""
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\]]*\])*)\]\([^)]*\)", r"\1", heading)  # a link's text stays
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").replace("*", "")
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(markdown: Path) -> set[str]:
    """Every heading's slug in a markdown file, repeats numbered as GitHub numbers them (x, x-1, x-2)."""
    seen: dict[str, int] = {}
    found = set()
    for _, title in HEADING.findall(FENCE.sub("", markdown.read_text(encoding="utf-8"))):
        slug = github_slug(title)
        found.add(slug if slug not in seen else f"{slug}-{seen[slug]}")
        seen[slug] = seen.get(slug, 0) + 1
    return found


def relative_links(markdown: Path) -> list[str]:
    targets = LINK.findall(without_code(markdown.read_text(encoding="utf-8")))
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I)]  # http:, mailto: ... are not ours


def broken_link(markdown: Path, target: str) -> str | None:
    """Why `target`, linked from `markdown`, does not resolve; None when it does."""
    path_part, _, anchor = target.partition("#")
    resolved = (markdown.parent / unquote(path_part)).resolve() if path_part else markdown
    if ROOT not in (resolved, *resolved.parents):
        return f"{target}: leaves the repository"
    if not resolved.exists():
        return f"{target}: no such file {resolved.relative_to(ROOT)}"
    if anchor and resolved.suffix == ".md" and unquote(anchor) not in anchors(resolved):
        return f"{target}: no heading with anchor #{anchor} in {resolved.relative_to(ROOT)}"
    return None


@pytest.mark.parametrize("heading, slug", [
    ("two_stage: freeze, then fine-tune", "two_stage-freeze-then-fine-tune"),
    ("Statistics: intervals, Holm, pairs", "statistics-intervals-holm-pairs"),
    ("Scaling out: parallel, SLURM, Ray", "scaling-out-parallel-slurm-ray"),
    ("C++ & Python", "c--python"),
    ("The `TORCH` variable", "the-torch-variable"),
    ("See [the study](x.md) here", "see-the-study-here"),
    ("Figures (all in `results/`)", "figures-all-in-results"),
])
def test_github_slugs(heading, slug):
    assert github_slug(heading) == slug


def test_anchors_number_repeated_headings(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Usage\n## One cell\n```sh\n# not a heading\n```\n## One cell\n### Sweeps ###\n", encoding="utf-8")
    assert anchors(page) == {"usage", "one-cell", "one-cell-1", "sweeps"}


def test_links_inside_code_are_not_links(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("[a](a.md) `[b](b.md)`\n```\n[c](c.md)\n```\n![d](img/d.png \"title\") [e](https://x.org/y)\n",
                    encoding="utf-8")
    assert relative_links(page) == ["a.md", "img/d.png"]


@pytest.mark.parametrize("markdown", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(markdown):
    broken = [why for target in relative_links(markdown) if (why := broken_link(markdown, target))]
    assert not broken, f"{markdown.relative_to(ROOT)}:\n" + "\n".join(broken)


def test_the_link_check_sees_the_links():
    # The README's "where to read next" and its study links: a check that found none would pass vacuously.
    targets = relative_links(README)
    assert "docs/index.md" in targets and "results/study_converge/README.md" in targets


def test_a_broken_link_and_a_wrong_anchor_are_caught(tmp_path):
    page = ROOT / "docs" / "index.md"
    assert broken_link(page, "usage.md#one-cell") is None
    assert "no heading with anchor #one-cel" in broken_link(page, "usage.md#one-cel")
    assert "no such file" in broken_link(page, "nosuch.md")
    assert "leaves the repository" in broken_link(page, "../../shared/MANIFEST.md")


def test_the_docs_index_lists_every_page():
    listed = {Path(target.partition("#")[0]).name for target in relative_links(ROOT / "docs" / "index.md")}
    missing = [page.name for page in PAGES if page.name != "index.md" and page.name not in listed]
    assert not missing, f"docs/index.md does not list {missing}"


def test_the_readme_is_a_front_door():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; the front door keeps to {README_MAX_LINES}"
    first_screen = [line.split("#")[0].strip() for line in lines[:QUICK_START_WITHIN]]
    assert "make demo" in first_screen and "make test" in first_screen, (
        f"the quick start (`make demo`, `make test`) must be in README.md's first {QUICK_START_WITHIN} lines")


def test_the_headline_block_is_marked_once():
    text = README.read_text(encoding="utf-8")
    start, end = "<!-- headline:start -->", "<!-- headline:end -->"
    assert text.count(start) == 1 and text.count(end) == 1 and text.index(start) < text.index(end)


# --- make setup TORCH=... -----------------------------------------------------------------------------------------

def dry_run_setup(venv: Path, *variables: str) -> list[str]:
    """The commands `make setup` would run into `venv`, printed by make -n (-B: as on a fresh clone); nothing runs."""
    # A make above this test (make test TORCH=...) passes its variables down through MAKEFLAGS: leave them out.
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "TORCH", "PYTHON"}}
    done = subprocess.run(["make", "-n", "-B", "setup", f"VENV={venv}", *variables], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60, check=True)
    return done.stdout.splitlines()


def documented_torch_values() -> list[str]:
    pattern = re.compile(r'make setup TORCH="([^"]+)"')
    return sorted({value for page in (README, *PAGES) for value in pattern.findall(page.read_text(encoding="utf-8"))})


needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


@needs_make
def test_setup_by_default_installs_the_pinned_torch_then_the_project(tmp_path):
    venv = tmp_path / "venv"
    assert dry_run_setup(venv) == [
        f"python3 -m venv {venv}",
        f"{venv}/bin/pip install --quiet --upgrade pip",
        f"{venv}/bin/pip install --quiet torch==2.13.0",
        f"{venv}/bin/pip install --quiet -e '.[test]'",
        f"touch {venv}/.installed",
    ]
    assert not venv.exists()


def test_the_docs_show_a_cuda_torch():
    assert "torch --index-url https://download.pytorch.org/whl/cu124" in documented_torch_values()


@needs_make
@pytest.mark.parametrize("torch_arguments", documented_torch_values())
def test_setup_passes_each_documented_torch_to_pip(tmp_path, torch_arguments):
    venv = tmp_path / "venv"
    commands = dry_run_setup(venv, f"TORCH={torch_arguments}")
    assert commands[2] == f"{venv}/bin/pip install --quiet {torch_arguments}"
    assert commands[3] == f"{venv}/bin/pip install --quiet -e '.[test]'"  # the project after torch, as before
    assert not venv.exists()


# --- the documented commands compose -------------------------------------------------------------------------------

def documented_runs(markdown: Path) -> list[str]:
    """The `elmo-bench ...` command lines in a page's sh blocks, continuation lines joined."""
    blocks = re.findall(r"^```sh\n(.*?)^```", markdown.read_text(encoding="utf-8"), re.M | re.S)
    lines = "\n".join(blocks).replace("\\\n", " ").splitlines()
    return [line.split("#")[0] for line in lines if re.search(r"(^|\s)elmo-bench\s", line.split("#")[0])]


def overrides(command: str, data_root: Path) -> list[str]:
    """One cell of the command's sweep (the first value of each swept key); launcher keys aside."""
    words = shlex.split(command.replace("$PWD", str(data_root)))
    words = words[words.index("elmo-bench") + 1:]
    cell = []
    for word in words:
        key, is_override, value = word.partition("=")
        if not is_override or key.startswith(("hydra", "+hydra")):
            continue  # -m, and the launcher, which compose() does not take
        first = value if value.startswith("[") else value.split(",")[0]
        cell.append(f"{key}={first}")
    return cell


DOCUMENTED_RUNS = [(page, command) for page in (README, ROOT / "docs" / "own-data.md") for command in documented_runs(page)]


def test_the_readme_shows_a_run_of_your_own_data():
    assert any("task=tagging" in command and "model=original" in command for page, command in DOCUMENTED_RUNS
               if page == README)


@pytest.mark.parametrize("command", [command for _, command in DOCUMENTED_RUNS],
                         ids=[f"{page.name}-{i}" for i, (page, _) in enumerate(DOCUMENTED_RUNS)])
def test_documented_runs_compose(command, tmp_path):
    from runs import make_config

    make_config(overrides(command, tmp_path))  # a wrong key or value is a ConfigError naming it


def test_the_readme_headline_is_the_committed_studys_report_headline():
    from elmo_bench.report.headline import readme_mismatch

    assert readme_mismatch(ROOT / "README.md", ROOT / "results" / "study_converge" / "report") is None
