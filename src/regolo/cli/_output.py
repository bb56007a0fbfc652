"""How commands print: rich tables for people, ``--json`` for scripts, errors on stderr."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, ParamSpec, TypeVar

import typer
from pydantic import BaseModel
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from regolo.errors import RegoloError

P = ParamSpec("P")
R = TypeVar("R")


def console() -> Console:
    # Built per call so that COLUMNS and the redirected stdout of tests are honoured.
    return Console(highlight=False)


def error_console() -> Console:
    return Console(stderr=True, highlight=False)


def print_json(value: BaseModel | Sequence[BaseModel] | None) -> None:
    if isinstance(value, BaseModel):
        data: Any = value.model_dump(mode="json")
    elif value is None:
        data = None
    else:
        data = [item.model_dump(mode="json") for item in value]
    typer.echo(json.dumps(data, indent=2))


def print_table(columns: Sequence[str], rows: Iterable[Sequence[object]], title: str = "") -> None:
    table = Table(*columns, title=title or None, title_justify="left")
    for row in rows:
        table.add_row(*(escape(cell(value)) for value in row))
    console().print(table)


def cell(value: object) -> str:
    """One value as a table cell: no value is "-", times are UTC to the second."""
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return f"{value:f}"
    return str(value)


def fail(message: str) -> typer.Exit:
    error_console().print(f"[red]error:[/] {escape(message)}")
    return typer.Exit(1)


def reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn SDK errors into one red line on stderr and exit status 1, not a traceback."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (RegoloError, TimeoutError) as exc:
            raise fail(str(exc)) from None

    return run
