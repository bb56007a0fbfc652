"""`regolo serve` options: what is not given on the command line comes from REGOLO_*."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

import regolo.server.main as server_main
from regolo.cli.main import app
from regolo.server.settings import Settings


class Stop(Exception):
    pass


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[Settings]:
    """The settings ``serve`` opens the platform with (it stops right there)."""
    seen: list[Settings] = []

    def open_platform(settings: Settings) -> None:
        seen.append(settings)
        raise Stop

    monkeypatch.setattr(server_main.Platform, "open", open_platform)
    return seen


def test_environment_sets_what_the_command_line_leaves_out(
    opened: list[Settings], tmp_path: Path
) -> None:
    env = {"REGOLO_HOME": str(tmp_path), "REGOLO_PORT": "8765", "REGOLO_HOST": "0.0.0.0"}
    CliRunner().invoke(app, ["serve"], env=env)
    assert (opened[0].port, opened[0].host, opened[0].role) == (8765, "0.0.0.0", "all")


def test_the_command_line_wins_over_the_environment(opened: list[Settings], tmp_path: Path) -> None:
    env = {"REGOLO_HOME": str(tmp_path), "REGOLO_PORT": "8765", "REGOLO_ROLE": "gateway"}
    CliRunner().invoke(app, ["serve", "--port", "9000", "--role", "api"], env=env)
    assert (opened[0].port, opened[0].role) == (9000, "api")


def test_defaults_without_either(
    opened: list[Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("REGOLO_PORT", "REGOLO_HOST", "REGOLO_ROLE"):
        monkeypatch.delenv(name, raising=False)
    CliRunner().invoke(app, ["serve"], env={"REGOLO_HOME": str(tmp_path)})
    assert (opened[0].port, opened[0].host, opened[0].role) == (8000, "127.0.0.1", "all")
