"""The ``regolo`` command: ``regolo serve`` runs the platform, the rest talk to its API."""

from __future__ import annotations

import enum
from pathlib import Path

import typer

from regolo.cli import autoscaling, batches, billing, endpoints, keys, models
from regolo.cli._context import get_client
from regolo.cli._output import print_json, print_table, reports_errors
from regolo.cli.chat import chat

app = typer.Typer(
    name="regolo",
    help="Regolo Endpoints: deploy models as private OpenAI-compatible endpoints.",
    no_args_is_help=True,
)
app.add_typer(keys.app, name="keys")
app.add_typer(batches.app, name="batches")
app.add_typer(models.app, name="models")
app.add_typer(endpoints.app, name="endpoints")
autoscaling.register(endpoints.app)
app.add_typer(billing.app, name="billing")
app.command("chat")(chat)


class Role(enum.StrEnum):
    ALL = "all"
    API = "api"
    GATEWAY = "gateway"
    CONTROLLER = "controller"


@app.command("serve")
def serve(
    # No defaults here: unset options leave REGOLO_HOST, REGOLO_PORT and REGOLO_ROLE (and
    # then the settings' own defaults: 127.0.0.1, 8000, all) in charge.
    host: str | None = typer.Option(None, help="Listen address [default: 127.0.0.1]."),
    port: int | None = typer.Option(None, help="Listen port [default: 8000]."),
    role: Role | None = typer.Option(
        None, help="Run everything, or one part of a split setup [default: all]."
    ),
    demo: bool = typer.Option(True, "--demo/--no-demo", help="Seed a small demo model."),
    home: Path | None = typer.Option(None, envvar="REGOLO_HOME", help="Data directory."),
) -> None:
    """Run the platform (API, gateway, dashboard, control loops) on this machine."""
    # Imported here so that the SDK and the client commands never need server packages.
    from regolo.server.main import serve as run_server

    run_server(host=host, port=port, role=role.value if role else None, demo=demo, home=home)


@app.command("instances")
@reports_errors
def instances(
    ctx: typer.Context, as_json: bool = typer.Option(False, "--json", help="Print JSON.")
) -> None:
    """List the instance types endpoints can run on, with hourly prices."""
    catalog = get_client(ctx).list_instances()
    if as_json:
        print_json(catalog)
        return
    rows = [
        [
            i.id,
            i.accelerator,
            i.gpu_count,
            i.gpu_memory_gb,
            i.vcpu,
            i.ram_gb,
            f"{i.price_per_hour:f} {i.currency}",
            i.available,
        ]
        for i in catalog
    ]
    columns = ["ID", "Accelerator", "GPUs", "GPU GB", "vCPU", "RAM GB", "Price/hour", "Available"]
    print_table(columns, rows)


def main() -> None:
    app()
