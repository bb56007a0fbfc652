"""``regolo endpoints``: deploy, change, roll out and delete endpoints."""

from __future__ import annotations

import typer

from regolo.cli._context import get_client
from regolo.cli._output import console, print_json, print_table, reports_errors
from regolo.cli._parse import parse_traffic
from regolo.types import Endpoint

app = typer.Typer(help="Deploy models as endpoints and manage their rollout.", no_args_is_help=True)

# Options shared by create and update; None means "not given", so it is not sent.
_MIN = typer.Option(None, "--min-replicas", help="Autoscaling floor.")
_MAX = typer.Option(None, "--max-replicas", help="Autoscaling ceiling.")
_TARGET = typer.Option(None, "--target-utilization", help="Autoscaling target, 0-1.")
_INSTANCE = typer.Option(None, "--instance-type", help="See `regolo instances`.")
_CPU_REQ = typer.Option(None, "--cpu-request", help='e.g. "2"')
_MEM_REQ = typer.Option(None, "--memory-request", help='e.g. "4Gi"')
_CPU_LIM = typer.Option(None, "--cpu-limit")
_MEM_LIM = typer.Option(None, "--memory-limit")
_TIMEOUT = typer.Option(None, "--request-timeout-seconds", help="Per-request timeout.")
_CACHE = typer.Option(None, "--cache/--no-cache", help="Response cache.")
_COMPRESS = typer.Option(None, "--compression/--no-compression", help="gzip responses.")
_JSON = typer.Option(False, "--json", help="Print JSON.")


@app.command("create")
@reports_errors
def create(
    ctx: typer.Context,
    name: str,
    model: str = typer.Option(..., "--model", help="Library model name."),
    version: str = typer.Option("1.0", "--version", help="Model version."),
    replicas: int = typer.Option(1, "--replicas"),
    min_replicas: int | None = _MIN,
    max_replicas: int | None = _MAX,
    target_utilization: float | None = _TARGET,
    instance_type: str | None = _INSTANCE,
    cpu_request: str | None = _CPU_REQ,
    memory_request: str | None = _MEM_REQ,
    cpu_limit: str | None = _CPU_LIM,
    memory_limit: str | None = _MEM_LIM,
    request_timeout_seconds: float | None = _TIMEOUT,
    enable_cache: bool | None = _CACHE,
    enable_compression: bool | None = _COMPRESS,
    runtime: str | None = typer.Option(None, help="llamacpp, transformers, vllm."),
    wait: bool = typer.Option(False, "--wait", help="Wait until the endpoint is ready."),
    as_json: bool = _JSON,
) -> None:
    """Deploy MODEL:VERSION as endpoint NAME."""
    client = get_client(ctx)
    config = _given(
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        target_utilization=target_utilization,
        instance_type=instance_type,
        cpu_request=cpu_request,
        memory_request=memory_request,
        cpu_limit=cpu_limit,
        memory_limit=memory_limit,
        request_timeout_seconds=request_timeout_seconds,
        enable_cache=enable_cache,
        enable_compression=enable_compression,
        runtime=runtime,
    )
    endpoint = client.create_endpoint(name, model, version, replicas, **config)
    if wait:
        endpoint = client.wait_for_endpoint(endpoint.id)
    _show(endpoint, as_json)


@app.command("list")
@reports_errors
def list_(ctx: typer.Context, as_json: bool = _JSON) -> None:
    """List endpoints."""
    endpoints = get_client(ctx).list_endpoints()
    if as_json:
        print_json(endpoints)
        return
    rows = [
        [e.name, e.id, f"{e.model}:{e.version}", e.status, e.replicas, e.instance_type, e.url]
        for e in endpoints
    ]
    print_table(["Name", "ID", "Model", "Status", "Replicas", "Instance", "URL"], rows)


@app.command("get")
@reports_errors
def get(ctx: typer.Context, endpoint: str, as_json: bool = _JSON) -> None:
    """Show one endpoint and its deployments."""
    _show(get_client(ctx).get_endpoint(endpoint), as_json)


@app.command("update")
@reports_errors
def update(
    ctx: typer.Context,
    endpoint: str,
    replicas: int | None = typer.Option(None, "--replicas"),
    min_replicas: int | None = _MIN,
    max_replicas: int | None = _MAX,
    target_utilization: float | None = _TARGET,
    instance_type: str | None = _INSTANCE,
    cpu_request: str | None = _CPU_REQ,
    memory_request: str | None = _MEM_REQ,
    cpu_limit: str | None = _CPU_LIM,
    memory_limit: str | None = _MEM_LIM,
    request_timeout_seconds: float | None = _TIMEOUT,
    enable_cache: bool | None = _CACHE,
    enable_compression: bool | None = _COMPRESS,
    as_json: bool = _JSON,
) -> None:
    """Change an endpoint's scaling, resources or network settings."""
    changes = _given(
        replicas=replicas,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        target_utilization=target_utilization,
        instance_type=instance_type,
        cpu_request=cpu_request,
        memory_request=memory_request,
        cpu_limit=cpu_limit,
        memory_limit=memory_limit,
        request_timeout_seconds=request_timeout_seconds,
        enable_cache=enable_cache,
        enable_compression=enable_compression,
    )
    if not changes:
        raise typer.BadParameter("give at least one option to change")
    _show(get_client(ctx).update_endpoint(endpoint, **changes), as_json)


@app.command("delete")
@reports_errors
def delete(
    ctx: typer.Context,
    endpoint: str,
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask."),
) -> None:
    """Drain and delete an endpoint."""
    if not yes:
        typer.confirm(f"Delete endpoint {endpoint}?", abort=True)
    get_client(ctx).delete_endpoint(endpoint)
    console().print(f"Deleted endpoint {endpoint}")


@app.command("canary")
@reports_errors
def canary(
    ctx: typer.Context,
    endpoint: str,
    version: str = typer.Option(..., "--version", help="The new model version."),
    percent: float = typer.Option(..., "--percent", help="Share of traffic, 0-100."),
) -> None:
    """Start a canary: send PERCENT % of the traffic to a new version."""
    started = get_client(ctx).create_canary(endpoint, version, percent)
    console().print(
        f"Canary {started.new_version} gets {started.traffic_percentage:g}% of {endpoint}"
        f" (stable: {started.stable_version or '-'})"
    )


@app.command("traffic")
@reports_errors
def traffic(
    ctx: typer.Context,
    endpoint: str,
    weights: list[str] = typer.Argument(..., help="VERSION=WEIGHT pairs, e.g. 1.0=0.5 1.1=0.5"),
) -> None:
    """Split traffic between versions (A/B, blue-green)."""
    _show(get_client(ctx).update_endpoint_traffic(endpoint, parse_traffic(weights)), False)


@app.command("rollback")
@reports_errors
def rollback(
    ctx: typer.Context,
    endpoint: str,
    to: str | None = typer.Option(None, "--to", help="Default: the last stable version."),
) -> None:
    """Send all traffic back to the stable version."""
    _show(get_client(ctx).rollback_endpoint(endpoint, to), False)


@app.command("promote")
@reports_errors
def promote(ctx: typer.Context, endpoint: str) -> None:
    """Make the canary the stable version with all traffic."""
    _show(get_client(ctx).promote_canary(endpoint), False)


def _given(**options: object) -> dict[str, object]:
    return {name: value for name, value in options.items() if value is not None}


def _show(endpoint: Endpoint, as_json: bool) -> None:
    if as_json:
        print_json(endpoint)
        return
    out = console()
    out.print(f"[bold]{endpoint.name}[/] ({endpoint.id})  {endpoint.model}:{endpoint.version}")
    out.print(
        f"  status: {endpoint.status}"
        + (f" - {endpoint.status_reason}" if endpoint.status_reason else "")
    )
    out.print(
        f"  url: {endpoint.url or '-'}  replicas: {endpoint.replicas}"
        f"  instance: {endpoint.instance_type or '-'}",
        markup=False,
    )
    rows = [
        [d.version, f"{d.traffic_weight:.0%}", f"{d.ready_replicas}/{d.replicas}", d.status, d.id]
        for d in endpoint.deployments
    ]
    if rows:
        print_table(["Version", "Traffic", "Ready", "Status", "Deployment"], rows)


# `regolo endpoints metrics` and `regolo endpoints health` live in their own module.
from regolo.cli import observe  # noqa: E402

observe.register(app)
