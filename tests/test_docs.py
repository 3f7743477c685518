"""The README and the manual in docs/ say what the code does: every fenced `vrbench` command
parses with today's flags and choices, and every relative link leads to a file."""

import re
import shlex
from pathlib import Path

import pytest

from vrbench import cli

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"```bash\n(.*?)```", re.S)
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _commands(page: Path) -> list[list[str]]:
    """The argument lists of the `vrbench` commands in a page's bash blocks (also run as
    `python -m vrbench` under torchrun); `...` stands for more flags and is dropped."""
    out = []
    for block in FENCE.findall(page.read_text()):
        for line in block.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if "vrbench" in words:
                args = words[words.index("vrbench") + 1:]
            else:
                continue
            out.append([w for w in args if w != "..."])
    return out


def test_the_pages_hold_commands():
    assert len(_commands(ROOT / "README.md")) >= 8
    assert sum(len(_commands(p)) for p in PAGES) >= 25


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_command_parses(page, capsys):
    for args in _commands(page):
        parser = cli.build_parser(cli._recipe_defaults(args))
        try:
            parser.parse_args(args)
        except SystemExit:
            pytest.fail(f"{page.name}: `vrbench {shlex.join(args)}` does not parse: "
                        f"{capsys.readouterr().err.strip()}")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_leads_somewhere(page):
    for target in LINK.findall(page.read_text()):
        if "://" in target:
            continue
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_the_readme_is_a_front_door():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert "make demo" in text and "make test" in text
    for page in (ROOT / "docs").glob("*.md"):
        assert f"docs/{page.name}" in text, f"the README does not link {page.name}"
