"""``regolo chat``: talk to an endpoint through the gateway, streaming the reply."""

from __future__ import annotations

from typing import Any

import typer

from regolo.cli._context import get_client
from regolo.cli._output import console, reports_errors
from regolo.client import RegoloClient

_EXIT_WORDS = frozenset({"/exit", "/quit"})


@reports_errors
def chat(
    ctx: typer.Context,
    endpoint: str = typer.Argument(..., help="Endpoint name, or its URL."),
    message: str | None = typer.Option(None, "--message", "-m", help="Ask once and exit."),
    system: str | None = typer.Option(None, "--system", help="System prompt."),
    model: str | None = typer.Option(None, "--model", help="Only for gateways that need it."),
    max_tokens: int | None = typer.Option(None, "--max-tokens"),
    temperature: float | None = typer.Option(None, "--temperature"),
) -> None:
    """Chat with an endpoint; the reply streams as it is generated. /exit or Ctrl-D ends."""
    client = get_client(ctx).for_endpoint(endpoint)
    params = {
        k: v
        for k, v in {"max_tokens": max_tokens, "temperature": temperature}.items()
        if v is not None
    }
    history: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    if message is not None:
        _ask(client, history, message, model, params)
        return
    console().print(f"Chatting with [bold]{endpoint}[/]; /exit or Ctrl-D to end.")
    while (line := _read_line()) is not None:
        if line.strip() in _EXIT_WORDS:
            break
        if line.strip():
            _ask(client, history, line, model, params)


def _ask(
    client: RegoloClient,
    history: list[dict[str, Any]],
    text: str,
    model: str | None,
    params: dict[str, Any],
) -> None:
    history.append({"role": "user", "content": text})
    parts: list[str] = []
    for part in client.chat_stream(history, model=model, **params):
        parts.append(part)
        typer.echo(part, nl=False)
    typer.echo()
    history.append({"role": "assistant", "content": "".join(parts)})


def _read_line() -> str | None:
    try:
        return input("you> ")
    except (EOFError, KeyboardInterrupt):
        typer.echo()
        return None
