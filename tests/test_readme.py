"""The documentation stays inside the repository: a clone has every page a link points at.

Checks README.md, docs/*.md and the other Markdown files in the repository: every relative
link (and its #anchor) resolves to a file in the repository, and nothing points at the
`../shared` folder beside the working tree, which a clone does not have.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = sorted(
    {
        REPO / "README.md",
        *REPO.glob("docs/*.md"),
        *REPO.glob("bot/**/*.md"),
        *REPO.glob("bench/*.md"),
    },
    key=lambda p: str(p),
)
FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
INLINE_CODE = re.compile(r"`[^`\n]*`")
LINK = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?"
    r"""(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)"""
)
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
# Hosts of package and image registries: the docs name none (the project installs from
# wherever the reader's pip and container tools are configured to look).
REGISTRY_HOSTS = ("pypi.org", "pythonhosted.org", "docker.io", "ghcr.io", "quay.io", "npmjs")


def _name(path: Path) -> str:
    return str(path.relative_to(REPO))


def links(text: str) -> list[str]:
    """Link targets of a Markdown text, outside code blocks and code spans."""
    prose = INLINE_CODE.sub("", FENCE.sub("", text))
    return LINK.findall(prose) + REFERENCE.findall(prose)


def anchors(path: Path) -> set[str]:
    """GitHub's heading anchors of a Markdown file."""
    found = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        found.add(slug)
    return found


def test_the_pages_are_there() -> None:
    names = [_name(p) for p in PAGES]
    pages = ("README.md", "docs/elasticsearch.md", "docs/slack.md", "docs/containers.md")
    for page in (*pages, "bench/README.md"):
        assert page in names


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_no_page_points_outside_the_repository(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert "../shared" not in text and "shared/reference" not in text, (
        f"{_name(page)} refers to ../shared, which a clone does not have: say it in docs/ instead"
    )
    for host in REGISTRY_HOSTS:
        assert host not in text, f"{_name(page)} names the registry host {host}"


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_relative_link_resolves_in_the_repository(page: Path) -> None:
    broken = []
    for target in links(page.read_text(encoding="utf-8")):
        parts = urlsplit(target)
        if parts.scheme or parts.netloc:  # https://…, mailto:…: outside by design
            continue
        file = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
        if not file.is_relative_to(REPO) or not file.exists():
            broken.append(f"{target}: no such file in the repository")
        elif parts.fragment and file.suffix == ".md" and parts.fragment not in anchors(file):
            broken.append(f"{target}: no heading #{parts.fragment} in {_name(file)}")
    assert broken == [], f"{_name(page)}: " + "; ".join(broken)


def test_the_checker_finds_what_it_must() -> None:
    text = (
        "[a](docs/slack.md) ![b](x.png 'c') [c](https://example.com) <https://example.com>\n"
        "`[not](a-link.md)`\n```\n[nor](this.md)\n```\n[ref]: ../shared/reference/x.md\n"
    )
    assert links(text) == [
        "docs/slack.md",
        "x.png",
        "https://example.com",
        "../shared/reference/x.md",
    ]
    assert "privileges" in anchors(REPO / "docs" / "elasticsearch.md")
