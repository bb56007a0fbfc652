"""``regolo billing``: prepaid balance, usage, invoices, cost estimates and top-ups."""

from __future__ import annotations

from pathlib import Path

import typer

from regolo.cli._context import get_client
from regolo.cli._output import console, print_json, print_table, reports_errors

app = typer.Typer(
    help="Prepaid credit, hourly usage, invoices and estimates.", no_args_is_help=True
)

JSON = typer.Option(False, "--json", help="Print JSON.")


@app.command("balance")
@reports_errors
def balance(ctx: typer.Context, as_json: bool = JSON) -> None:
    """Show the account's prepaid credit and whether its endpoints are paused."""
    view = get_client(ctx).get_balance()
    if as_json:
        print_json(view)
        return
    out = console()
    out.print(f"Balance: [bold]{view.balance:f} {view.currency}[/]  ({view.status})")
    out.print(f"Running cost: {view.cost_per_hour:f} {view.currency}/hour", markup=False)
    if view.hours_remaining is not None:
        out.print(f"Enough for about {view.hours_remaining} hours at this rate", markup=False)
    if view.low_balance:
        out.print(f"[yellow]Low balance (threshold {view.low_balance_threshold:f}).[/]")
    if view.pause_reason:
        out.print(f"[red]Paused: {view.pause_reason}[/]")


@app.command("usage")
@reports_errors
def usage(
    ctx: typer.Context,
    month: str | None = typer.Option(None, help="YYYY-MM; default this month."),
    csv: bool = typer.Option(False, "--csv", help="Print every charged hour as CSV."),
    as_json: bool = JSON,
) -> None:
    """Charged replica-hours of a month, per endpoint."""
    client = get_client(ctx)
    if csv:
        typer.echo(client.get_usage_csv(month), nl=False)
        return
    report = client.get_usage(month)
    if as_json:
        print_json(report)
        return
    rows = [[u.endpoint, u.hours, u.amount] for u in report.by_endpoint]
    rows.append(["total", report.total_hours, report.total_amount])
    print_table(["Endpoint", "Hours", f"Amount ({report.currency})"], rows, title=report.month)


@app.command("invoices")
@reports_errors
def invoices(
    ctx: typer.Context,
    pdf: str | None = typer.Option(None, help="Download this invoice id (or 'preview') as PDF."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Where to save the PDF."),
    as_json: bool = JSON,
) -> None:
    """List invoices (the running month's preview first), or download one as PDF."""
    client = get_client(ctx)
    if pdf is not None:
        saved = client.download_invoice_pdf(pdf, output or Path(f"invoice-{pdf}.pdf"))
        console().print(f"Saved {saved}", markup=False)
        return
    found = client.list_invoices()
    if as_json:
        print_json(found)
        return
    columns = ["ID", "Month", "Status", "Hours", "Subtotal", "Credits applied", "Due", "Closing"]
    rows = [
        [
            i.id,
            i.month,
            i.status,
            i.total_hours,
            i.subtotal,
            i.credits_applied,
            i.amount_due,
            i.closing_balance,
        ]
        for i in found
    ]
    print_table(columns, rows)


@app.command("estimate")
@reports_errors
def estimate(
    ctx: typer.Context,
    instance_type: str | None = typer.Option(None, help="e.g. a100-40gb-x1."),
    model: str | None = typer.Option(None, help="Model name (checked if in your library)."),
    version: str | None = typer.Option(None, help="Model version."),
    replicas: int = typer.Option(1, min=0, max=100),
    min_replicas: int | None = typer.Option(None, min=0, max=100),
    max_replicas: int | None = typer.Option(None, min=0, max=100),
    hours_per_month: int = typer.Option(720, min=1, max=744),
    as_json: bool = JSON,
) -> None:
    """Estimate the hourly and monthly cost of a deployment."""
    cost = get_client(ctx).estimate_cost(
        model,
        instance_type,
        replicas,
        hours_per_month,
        version=version,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
    )
    if as_json:
        print_json(cost)
        return
    out = console()
    unit = cost.currency
    out.print(
        f"{cost.instance_type} x {cost.replicas}: {cost.cost_per_hour:f} {unit}/hour, "
        f"{cost.cost_per_month:f} {unit}/month ({cost.hours_per_month} hours)",
        markup=False,
    )
    if cost.min_replicas != cost.max_replicas:
        out.print(
            f"Autoscaling {cost.min_replicas}-{cost.max_replicas} replicas: "
            f"{cost.cost_per_month_min:f} - {cost.cost_per_month_max:f} {unit}/month",
            markup=False,
        )
    if cost.fits is False:
        out.print(f"[yellow]The model may not fit: {cost.fit_reason}[/]")


@app.command("topup")
@reports_errors
def topup(
    ctx: typer.Context,
    amount: str = typer.Argument(..., help="Amount to credit, e.g. 50.00."),
    account: str | None = typer.Option(None, help="Account id or name; default your own."),
    note: str | None = typer.Option(None, help="A note kept in the ledger."),
    as_json: bool = JSON,
) -> None:
    """Add prepaid credit to an account (superadmin key); resumes paused endpoints."""
    result = get_client(ctx).topup(amount, account_id=account, note=note)
    if as_json:
        print_json(result)
        return
    out = console()
    out.print(
        f"Credited {result.amount:f} to {result.account_id}; balance "
        f"{result.balance.balance:f} {result.balance.currency}",
        markup=False,
    )
    if result.resumed:
        out.print("[green]Endpoints resumed.[/]")
