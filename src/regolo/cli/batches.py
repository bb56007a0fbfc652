"""``regolo batches``: submit a JSONL file to an endpoint, follow it, fetch its results."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from regolo._batches import Batch
from regolo.cli._context import get_client
from regolo.cli._output import console, print_json, print_table, reports_errors
from regolo.client import RegoloClient

app = typer.Typer(
    help="Run JSONL files of requests on spare endpoint capacity.", no_args_is_help=True
)
_JSON = typer.Option(False, "--json", help="Print JSON.")
POLL_SECONDS = 1.0


@app.command("submit")
@reports_errors
def submit(
    ctx: typer.Context,
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A JSONL file of requests."),
    endpoint: str | None = typer.Option(None, "--endpoint", help="Endpoint name or id."),
    completion_window: str = typer.Option("24h", "--completion-window"),
    wait: bool = typer.Option(True, "--wait/--no-wait", help="Follow with a progress bar."),
    as_json: bool = _JSON,
) -> None:
    """Submit FILE as a batch on --endpoint and follow it to the end."""
    client = get_client(ctx)
    batch = client.submit_batch(file, endpoint, completion_window=completion_window)
    if wait and not as_json:
        batch = _follow(client, batch)
    if as_json:
        print_json(batch)
        return
    _summary(batch)
    if batch.status in ("failed", "expired", "cancelled"):
        raise typer.Exit(1)


@app.command("list")
@reports_errors
def list_(
    ctx: typer.Context,
    limit: int = typer.Option(20, "--limit"),
    as_json: bool = _JSON,
) -> None:
    """The newest batches first."""
    batches = get_client(ctx).list_batches(limit)
    if as_json:
        print_json(batches)
        return
    rows = [
        [
            b.id,
            b.status,
            b.endpoint_id or "-",
            f"{b.request_counts.completed + b.request_counts.failed}/{b.request_counts.total}",
            b.request_counts.failed,
        ]
        for b in batches
    ]
    print_table(["id", "status", "endpoint", "done", "failed"], rows, title="Batches")


@app.command("get")
@reports_errors
def get(ctx: typer.Context, batch_id: str, as_json: bool = _JSON) -> None:
    """One batch's status and counts."""
    batch = get_client(ctx).get_batch(batch_id)
    if as_json:
        print_json(batch)
        return
    _summary(batch)


@app.command("results")
@reports_errors
def results(
    ctx: typer.Context,
    batch_id: str,
    output: Path | None = typer.Option(None, "--output", "-o", help="Write JSONL here."),
) -> None:
    """Every result line (output, then errors) as JSONL."""
    lines = get_client(ctx).get_batch_results(batch_id)
    text = "".join(json.dumps(line.model_dump(), ensure_ascii=False) + "\n" for line in lines)
    if output is None:
        typer.echo(text, nl=False)
    else:
        output.write_text(text)
        console().print(f"wrote {len(lines)} results to {output}")


@app.command("cancel")
@reports_errors
def cancel(ctx: typer.Context, batch_id: str, as_json: bool = _JSON) -> None:
    """Stop a batch; lines that finished are kept."""
    batch = get_client(ctx).cancel_batch(batch_id)
    if as_json:
        print_json(batch)
        return
    _summary(batch)


def _follow(client: RegoloClient, batch: Batch) -> Batch:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console(), transient=False) as progress:
        task = progress.add_task(f"{batch.id} {batch.status}", total=None)
        while not batch.done:
            time.sleep(POLL_SECONDS)
            batch = client.get_batch(batch.id)
            counts = batch.request_counts
            progress.update(
                task,
                description=f"{batch.id} {batch.status}",
                total=counts.total or None,
                completed=counts.completed + counts.failed,
            )
    return batch


def _summary(batch: Batch) -> None:
    counts = batch.request_counts
    rows = [
        ["id", batch.id],
        ["status", batch.status],
        ["endpoint", batch.endpoint_id or batch.endpoint],
        ["requests", f"{counts.total} total, {counts.completed} completed, {counts.failed} failed"],
        ["output file", batch.output_file_id or "-"],
        ["error file", batch.error_file_id or "-"],
    ]
    for error in (batch.errors or {}).get("data", [])[:20]:
        rows.append(["error", error.get("message", "")])
    print_table(["field", "value"], rows, title="Batch")
