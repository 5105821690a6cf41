"""The README stays a five-minute read whose links work, and the docs/ site builds strictly and offline.

The strict build is what CI's `make docs` runs; building it here too (about a second) means a broken
link fails the test suite as well, and the planted links prove that strict checking is really on.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MAX_README_LINES = 300

LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")


def _prose(text: str, code: bool = False) -> str:
    """The Markdown outside fenced code blocks, and outside inline code unless `code` (a heading's text keeps it)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.lstrip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line.replace("`", "") if code else re.sub(r"`[^`]*`", "", line))
    return "\n".join(lines)


def _anchors(page: Path) -> set[str]:
    """Heading ids as Python-Markdown's toc (mkdocs) makes them; GitHub's agree for these ASCII headings."""
    ids = set()
    for line in _prose(page.read_text(encoding="utf-8"), code=True).splitlines():
        if m := re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line):
            ids.add(slugify(m.group(1).replace("**", ""), "-"))
    return ids


def _relative_links(page: Path) -> list[str]:
    """Links to files and headings, not to sites (scheme://, mailto:)."""
    text = _prose(page.read_text(encoding="utf-8"))
    return [t for t in LINK.findall(text) if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def test_readme_is_a_five_minute_read():
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= MAX_README_LINES, f"README.md has {lines} lines; move detail into docs/ (limit {MAX_README_LINES})"


def test_readme_links_point_to_existing_files_and_headings():
    links = _relative_links(README)
    assert any(t.startswith("docs/") for t in links), "README.md links none of the docs/ pages"
    broken = []
    for target in links:
        path, _, anchor = target.partition("#")
        file = (README.parent / path) if path else README
        if not file.exists():
            broken.append(f"{target}: no file {file.relative_to(ROOT)}")
        elif anchor and file.suffix == ".md" and anchor not in _anchors(file):
            broken.append(f"{target}: no heading with id '{anchor}' in {file.relative_to(ROOT)}")
    assert not broken, "README.md has broken links:\n" + "\n".join(broken)


def test_link_checker_sees_a_broken_link(tmp_path):
    """The two tests above could pass by finding no links: they must see one that is broken."""
    page = tmp_path / "README.md"
    page.write_text("# `Top`\n\n[ok](#top) [gone](docs/nothing.md) `[code](not-a-link.md)`\n```\n[x](fenced.md)\n```\n")
    assert _relative_links(page) == ["#top", "docs/nothing.md"]
    assert "top" in _anchors(page)


def _build(project: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(project / "mkdocs.yml"),
                           "--site-dir", str(site)], capture_output=True, text=True, env=env, timeout=300)


def test_docs_site_builds_strictly_and_loads_nothing_remote(tmp_path):
    proc = _build(ROOT, tmp_path / "site")
    assert proc.returncode == 0, proc.stderr
    pages = sorted((tmp_path / "site").glob("*.html"))
    assert {p.stem for p in pages} >= {"index", "pipeline", "grids", "backends", "gpu", "reproducibility", "results"}
    remote = re.compile(r'<script[^>]*\ssrc="(?:https?:)?//[^"]+"'  # scripts and stylesheets, not links to other sites
                        r'|<link[^>]*\srel="(?:stylesheet|preload|modulepreload|icon)"[^>]*\shref="(?:https?:)?//[^"]+"')
    loads = {p.name: remote.findall(p.read_text(encoding="utf-8")) for p in pages}
    assert not any(loads.values()), f"pages load from the network (they must open from file:// offline): {loads}"


@pytest.mark.parametrize("plant, named", [
    ("[gone](missing.md)", "missing.md"),                        # a page that does not exist
    ("[gone](grids.md#no-such-heading)", "no-such-heading"),      # an anchor that does not exist
    ("[gone](../params.yaml)", "../params.yaml"),                 # a repository file outside docs/: name it as code
    (None, "orphan.md"),                                          # a page left out of the nav
])
def test_strict_build_fails_on_a_planted_broken_link(tmp_path, plant, named):
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(ROOT / "mkdocs.yml", project / "mkdocs.yml")
    shutil.copytree(ROOT / "docs", project / "docs")
    if plant is None:
        (project / "docs" / "orphan.md").write_text("# Orphan\n")
    else:
        with open(project / "docs" / "pipeline.md", "a", encoding="utf-8") as f:
            f.write(f"\n{plant}\n")
    proc = _build(project, tmp_path / "site")
    assert proc.returncode != 0, f"strict build passed with {plant or 'an orphan page'}"
    assert named in proc.stderr + proc.stdout
