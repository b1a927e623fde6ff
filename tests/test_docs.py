"""The docs say what the code does: the settings table is the settings classes' own."""

from __future__ import annotations

from pathlib import Path

from tongban_kit.node.settings_doc import settings_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_docs_settings_md_lists_exactly_the_settings_the_code_reads() -> None:
    written = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")

    assert written == settings_markdown(), (
        "docs/settings.md is stale: regenerate it with `.venv/bin/tongban settings > "
        "docs/settings.md`"
    )


def test_the_readme_shows_the_two_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")

    assert "make run" in readme
    assert "make test" in readme
