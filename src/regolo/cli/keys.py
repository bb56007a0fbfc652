"""``regolo keys``: mint, list and revoke API keys."""

from __future__ import annotations

from datetime import UTC, datetime

import typer

from regolo.cli._context import get_client
from regolo.cli._output import console, print_json, print_table, reports_errors
from regolo.cli._parse import parse_duration

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@app.command("create")
@reports_errors
def create(
    ctx: typer.Context,
    name: str,
    scope: list[str] = typer.Option(
        ["inference:*"], "--scope", help="admin, inference:* or inference:<endpoint>; repeatable."
    ),
    expires_in: str | None = typer.Option(None, help="Lifetime, e.g. 12h, 30d, 4w."),
    rpm: int | None = typer.Option(None, "--rpm", help="Requests per minute."),
    tpm: int | None = typer.Option(None, "--tpm", help="Tokens per minute."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Create a key and print its secret, which is shown only this once."""
    expires_at = datetime.now(UTC) + parse_duration(expires_in) if expires_in else None
    key = get_client(ctx).create_key(name, scope, expires_at, rpm, tpm)
    if as_json:
        print_json(key)
        return
    out = console()
    out.print(f"Created key [bold]{key.name}[/] ({key.id}) with scopes {', '.join(key.scopes)}")
    out.print(key.key, markup=False, soft_wrap=True)
    out.print("[yellow]Store it now: it will not be shown again.[/]")


@app.command("list")
@reports_errors
def list_(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    """List keys (prefixes only, never secrets)."""
    keys = get_client(ctx).list_keys()
    if as_json:
        print_json(keys)
        return
    columns = ["ID", "Name", "Prefix", "Scopes", "Created", "Expires", "Revoked", "Last used"]
    rows = [
        [
            k.id,
            k.name,
            k.prefix,
            " ".join(k.scopes),
            k.created_at,
            k.expires_at,
            k.revoked_at,
            k.last_used_at,
        ]
        for k in keys
    ]
    print_table(columns, rows)


@app.command("revoke")
@reports_errors
def revoke(ctx: typer.Context, key_id: str) -> None:
    """Revoke a key; calls with it fail from now on."""
    key = get_client(ctx).revoke_key(key_id)
    console().print(f"Revoked key {key.name} ({key.id})")
