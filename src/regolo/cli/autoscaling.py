"""``regolo endpoints autoscale`` and ``regolo endpoints autoscale-events``."""

from __future__ import annotations

import typer

from regolo.cli._context import get_client
from regolo.cli._output import print_json, print_table, reports_errors

_METRIC_HELP = (
    "METRIC=TARGET or METRIC=TARGET:UP_THRESHOLD:DOWN_THRESHOLD, repeatable;"
    " e.g. request_rate=100:150:50 or cpu_usage=0.7."
    " Metrics: cpu_usage, request_rate (per minute), concurrency, queue_depth, latency_p95_ms."
)


def parse_metric(text: str) -> dict[str, object]:
    """``request_rate=100:150:50`` -> {"metric": ..., "target": 100, thresholds...}."""
    name, sep, numbers = text.partition("=")
    parts = numbers.split(":") if sep else []
    if not name or not 1 <= len(parts) <= 3:
        raise typer.BadParameter(f"{text!r}: use METRIC=TARGET[:UP:DOWN]")
    try:
        values = [float(p) if p else None for p in parts]
    except ValueError as exc:
        raise typer.BadParameter(f"{text!r}: numbers expected") from exc
    out: dict[str, object] = {"metric": name.strip(), "target": values[0]}
    for key, value in zip(("scale_up_threshold", "scale_down_threshold"), values[1:], strict=False):
        if value is not None:
            out[key] = value
    return out


def autoscale(
    ctx: typer.Context,
    name: str,
    metric: list[str] = typer.Option(..., "--metric", help=_METRIC_HELP),
    min_replicas: int = typer.Option(1, "--min-replicas", help="0 allows scale to zero."),
    max_replicas: int = typer.Option(10, "--max-replicas"),
    scale_down_stabilization_seconds: float | None = typer.Option(
        None, "--scale-down-stabilization-seconds"
    ),
    idle_window_seconds: float | None = typer.Option(
        None, "--idle-window-seconds", help="Idle this long -> zero (with --min-replicas 0)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Set endpoint NAME's autoscaling policy."""
    policy = get_client(ctx).configure_autoscaling(
        name,
        metrics=[parse_metric(m) for m in metric],
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        scale_down_stabilization_seconds=scale_down_stabilization_seconds,
        idle_window_seconds=idle_window_seconds,
    )
    if as_json:
        print_json(policy)
        return
    rows = [
        (m.metric, m.target, m.scale_up_threshold, m.scale_down_threshold) for m in policy.metrics
    ]
    title = f"{name}: {policy.min_replicas}..{policy.max_replicas} replicas"
    print_table(("metric", "target", "scale up above", "scale down below"), rows, title)


def autoscale_events(
    ctx: typer.Context,
    name: str,
    limit: int = typer.Option(20, "--limit"),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Recent autoscaling decisions of endpoint NAME, newest first."""
    events = get_client(ctx).list_autoscaling_events(name, limit)
    if as_json:
        print_json(events)
        return
    rows = [
        (
            e.at.strftime("%H:%M:%S"),
            e.version,
            e.kind,
            e.current_replicas,
            e.desired_replicas,
            e.reason,
        )
        for e in events
    ]
    print_table(("at", "version", "kind", "from", "to", "reason"), rows, f"{name}: decisions")


def register(app: typer.Typer) -> None:
    """Add the commands to ``regolo endpoints``."""
    app.command("autoscale")(reports_errors(autoscale))
    app.command("autoscale-events")(reports_errors(autoscale_events))
