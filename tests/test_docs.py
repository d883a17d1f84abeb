"""The README is a front door: short, with its sections; the texts link only to files in the
repository; the README's Python runs as written."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [f for f in out.stdout.splitlines() if (ROOT / f).is_file()]


def test_the_readme_is_short_and_has_its_sections():
    assert len(README.splitlines()) <= 200
    sections = re.findall(r"^## (.+)$", README, flags=re.M)
    for name in ("Install", "Quickstart", "How to read a result"):
        assert name in sections, name
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_no_text_outside_the_tests_cites_a_specification_outside_the_repository():
    cites = [f for f in tracked_files() if not f.startswith("tests/")
             and f.endswith((".py", ".md", ".toml", ".cfg", ".sh", ".txt"))
             and re.search(r"\bSPEC\b", (ROOT / f).read_text(errors="replace"))]
    assert cites == []


def test_every_relative_link_of_the_markdown_texts_names_a_file_that_exists():
    broken = []
    for f in tracked_files():
        if not f.endswith(".md") or f.startswith("tests/"):
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", (ROOT / f).read_text()):
            if re.match(r"(https?:|mailto:|#)", target):
                continue
            if not (ROOT / f).parent.joinpath(target.split("#")[0]).resolve().exists():
                broken.append(f"{f}: {target}")
    assert broken == []


@pytest.mark.slow
def test_the_readmes_python_runs_as_written(tmp_path, monkeypatch):
    """Each ```python block of the README, in order, in one namespace (small: a few seconds)."""
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert len(blocks) >= 2
    monkeypatch.chdir(tmp_path)  # the runner writes into results/try here, not into the checkout
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "README.md", "exec"), namespace)
    assert set(namespace["report"].rates()) >= {"peak_in_target", "pred_kept"}
    assert len(namespace["result"].summary) == 2          # the attack and its noise control
