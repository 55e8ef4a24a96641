"""The README stays true: its column reference and its option tables match the code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import extractor
from extractor.cli import _parser
from extractor.schema import markdown_reference

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")


def test_column_reference_is_generated_from_the_schema() -> None:
    block = re.search(
        r"<!-- BEGIN GENERATED: extractor.schema.markdown_reference\(\) -->\n(.*)"
        r"<!-- END GENERATED -->",
        README,
        re.DOTALL,
    )
    assert block is not None
    assert block.group(1) == markdown_reference(), (
        "regenerate the README block with extractor.schema.markdown_reference()"
    )


@pytest.mark.parametrize(
    "command", ["extract", "sync", "simulate", "schema", "views", "compact", "demo"]
)
def test_every_option_is_documented(command: str) -> None:
    sub = _parser()._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
    options = {
        opt
        for action in sub._actions
        for opt in action.option_strings
        if opt.startswith("--") and opt != "--help"
    }
    missing = sorted(o for o in options if not re.search(rf"(?<![\w-]){o}(?![\w-])", README))
    assert missing == []


def test_quick_start_is_the_two_make_commands() -> None:
    quick = README.split("## Quick start", 1)[1].split("```", 2)[1]
    assert [line.split("#")[0].strip() for line in quick.strip("sh\n").splitlines()] == [
        "make demo",
        "make test",
    ]


def test_public_api_is_exactly_all() -> None:
    public = {name for name in dir(extractor) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(extractor, name)).__name__ == "module"}
    assert public - modules == set(extractor.__all__)
    for name in extractor.__all__:
        assert getattr(extractor, name) is not None
