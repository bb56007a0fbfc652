"""``regolo models``: the model library."""

from __future__ import annotations

import time

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

from regolo.cli._context import get_client
from regolo.cli._output import console, fail, print_json, print_table, reports_errors
from regolo.client import RegoloClient
from regolo.types import ModelFacts, ModelVersion

app = typer.Typer(
    help="Add models from Hugging Face and inspect the library.", no_args_is_help=True
)

_DONE_STATES = frozenset({"ready", "failed"})


@app.command("add")
@reports_errors
def add(
    ctx: typer.Context,
    url: str = typer.Argument(..., help="e.g. https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct"),
    name: str | None = typer.Option(None, help="Library name (default: from the URL)."),
    version: str | None = typer.Option(None, help="Version label (default: the next one)."),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Show progress until ready."),
    poll_interval: float = typer.Option(1.0, hidden=True),
) -> None:
    """Add a model; shows download progress until it is ready or failed."""
    client = get_client(ctx)
    added = client.add_model(url, name, version)
    if wait and added.status not in _DONE_STATES:
        added = _follow_download(client, added, poll_interval)
    if added.status == "failed":
        raise fail(f"{added.model}:{added.version} failed: {added.status_reason or 'no reason'}")
    facts = added.facts or ModelFacts()
    console().print(
        f"{added.model}:{added.version} is [bold]{added.status}[/]"
        f" ({facts.format or '?'}, {facts.parameter_count or '?'} parameters)"
    )


def _fact_cells(facts: ModelFacts | None) -> list[object]:
    """Format, task, parameters and size; blank until the files are inspected."""
    facts = facts or ModelFacts()
    return [facts.format, facts.task, facts.parameter_count, facts.size_bytes]


def _follow_download(client: RegoloClient, version: ModelVersion, poll: float) -> ModelVersion:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console()) as progress:
        task = progress.add_task(f"{version.model}:{version.version}", total=None)
        while version.status not in _DONE_STATES:
            time.sleep(poll)
            version = client.get_model_version(version.model, version.version)
            done = version.progress
            progress.update(task, completed=done.bytes_done, total=done.bytes_total or None)
    return version


@app.command("list")
@reports_errors
def list_(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    """List library models, one row per version."""
    models = get_client(ctx).list_models()
    if as_json:
        print_json(models)
        return
    rows = [
        [m.name, v.version, v.status, *_fact_cells(v.facts), v.source]
        for m in models
        for v in m.versions
    ]
    print_table(
        ["Model", "Version", "Status", "Format", "Task", "Parameters", "Bytes", "Source"], rows
    )


@app.command("instances")
@reports_errors
def instances(
    ctx: typer.Context,
    name: str,
    version: str | None = typer.Option(None, help="Default: the newest version."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Which instance types fit a model version, and what they cost."""
    fits = get_client(ctx).list_model_instances(name, version)
    if as_json:
        print_json(fits)
        return
    rows = [
        [
            f.instance_type,
            f.fits,
            f.gpus,
            f.price_per_hour,
            f.price_per_month,
            f.estimated_tokens_per_second,
            f.reason,
        ]
        for f in fits
    ]
    columns = ["Instance", "Fits", "GPUs", "Price/hour", "Price/month", "Tokens/s", "Reason"]
    print_table(columns, rows)


@app.command("delete")
@reports_errors
def delete(
    ctx: typer.Context,
    name: str,
    version: str | None = typer.Option(None, help="Delete only this version."),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
) -> None:
    """Delete a model or one of its versions."""
    target = f"{name}:{version}" if version else name
    if not yes:
        typer.confirm(f"Delete {target}?", abort=True)
    get_client(ctx).delete_model(name, version)
    console().print(f"Deleted {target}")
