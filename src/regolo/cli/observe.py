"""``regolo endpoints metrics NAME`` and ``regolo endpoints health NAME``."""

from __future__ import annotations

from collections.abc import Sequence

import typer

from regolo._metrics import EndpointHealth, EndpointMetrics, VersionMetrics
from regolo.cli._context import get_client
from regolo.cli._output import console, print_json, print_table, reports_errors

SPARK = "▁▂▃▄▅▆▇█"
RANGES = ("15m", "1h", "24h", "7d", "30d")


def register(app: typer.Typer) -> None:
    app.command("metrics")(metrics)
    app.command("health")(health)


@reports_errors
def metrics(
    ctx: typer.Context,
    endpoint: str,
    time_range: str = typer.Option("24h", "--range", help="15m, 1h, 24h, 7d or 30d."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Requests, latency, errors, availability and resource use of ENDPOINT."""
    if time_range not in RANGES:
        raise typer.BadParameter(f"use one of {', '.join(RANGES)}", param_hint="--range")
    found = get_client(ctx).get_endpoint_metrics(endpoint, time_range=time_range)
    if as_json:
        print_json(found)
        return
    rows = [["all", *_row(found)]] + [[name, *_row(v)] for name, v in sorted(found.version.items())]
    print_table(
        ["Version", "Requests", "Errors", "Avail.", "Avg ms", "p50 ms", "p95 ms", "p99 ms",
         "CPU", "Tok/s", "Cache hits"],
        rows,
        title=f"{found.endpoint} over {found.time_range}",
    )  # fmt: skip
    _chart(found)


def _row(values: VersionMetrics) -> list[object]:
    return [
        values.request_count,
        f"{values.error_rate:.2%}",
        f"{values.availability:.2%}",
        f"{values.avg_latency_ms:.1f}",
        _ms(values.p50_latency_ms),
        _ms(values.p95_latency_ms),
        _ms(values.p99_latency_ms),
        f"{values.cpu_usage:.0%}" if values.cpu_samples else "-",
        f"{values.tokens_per_second:.1f}",
        f"{values.cache_hit_rate:.0%}",
    ]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _chart(found: EndpointMetrics) -> None:
    if not found.series:
        return
    out = console()
    step = found.step_seconds
    requests = [float(point.request_count) for point in found.series]
    p95 = [point.p95_latency_ms or 0.0 for point in found.series]
    out.print(
        f"requests per {step} s  {sparkline(requests)}  max {max(requests):.0f}", markup=False
    )
    out.print(f"p95 latency (ms)     {sparkline(p95)}  max {max(p95):.1f}", markup=False)


def sparkline(values: Sequence[float]) -> str:
    """One character per value, scaled to the largest; blanks for zero."""
    top = max(values, default=0.0)
    if top <= 0:
        return " " * len(values)
    return "".join(
        " " if v <= 0 else SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1)))]
        for v in values
    )


@reports_errors
def health(
    ctx: typer.Context,
    endpoint: str,
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Replica readiness of ENDPOINT as the health checker last saw it."""
    found = get_client(ctx).check_endpoint_health(endpoint)
    if as_json:
        print_json(found)
        return
    _print_health(found)


def _print_health(found: EndpointHealth) -> None:
    out = console()
    out.print(
        f"{found.endpoint}: {found.status}  ready {found.ready_replicas} / {found.total_replicas}"
        f"  last check {found.last_check or '-'}",
        markup=False,
    )
    rows = [
        [r.id, r.version, r.state, r.consecutive_failures, r.last_probe_at, r.reason]
        for r in found.replicas
    ]
    if rows:
        print_table(["Replica", "Version", "State", "Failures", "Last probe", "Reason"], rows)
