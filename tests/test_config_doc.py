"""docs/configuration.md is generated from the config fields' own metadata and must match them."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from common.ground import config_doc
from common.ground.config import Config, TransductiveConfig


def test_committed_page_matches_the_fields():
    committed = config_doc.DOC_PATH.read_text() if config_doc.DOC_PATH.is_file() else ""
    assert committed == config_doc.render(), f"docs/configuration.md is stale: run `{config_doc.REGENERATE}`"


@pytest.mark.parametrize("cls", [Config, TransductiveConfig])
def test_every_field_says_what_it_does(cls):
    missing = [f.name for f in dataclasses.fields(cls) if not f.metadata.get("help", "").strip()]
    assert missing == [], f"{cls.__name__} fields without help metadata: {missing}"


def test_every_config_field_has_a_group_and_a_row():
    page = config_doc.render()
    for f in dataclasses.fields(Config):
        assert f.metadata.get("group"), f"{f.name} has no group metadata"
        assert f"| `{f.name}` |" in page


def test_a_field_without_help_stops_the_generator():
    @dataclass(frozen=True)
    class Undocumented:
        known: int = field(default=1, metadata={"group": "G", "help": "says what it does"})
        forgotten: int = field(default=2, metadata={"group": "G"})

    with pytest.raises(ValueError, match="forgotten"):
        config_doc.config_tables(Undocumented)


def test_a_field_without_group_stops_the_generator():
    @dataclass(frozen=True)
    class Ungrouped:
        loose: int = field(default=1, metadata={"help": "says what it does"})

    with pytest.raises(ValueError, match="loose"):
        config_doc.config_tables(Ungrouped)


def test_check_reports_a_stale_page(tmp_path, monkeypatch, capsys):
    page = tmp_path / "configuration.md"
    page.write_text("an old page\n")
    monkeypatch.setattr(config_doc, "DOC_PATH", page)
    monkeypatch.setattr(config_doc, "PROJECT_ROOT", tmp_path)
    assert config_doc.main(["--check"]) == 1
    assert "stale" in capsys.readouterr().out
    assert config_doc.main(["--write"]) == 0
    assert config_doc.main(["--check"]) == 0
    assert page.read_text() == config_doc.render()
