"""The SDK client a command talks through; tests pass their own as ``obj``."""

from __future__ import annotations

import typer

from regolo.client import RegoloClient


def get_client(ctx: typer.Context) -> RegoloClient:
    """The client given to the app (``CliRunner.invoke(app, obj=client)``), else one from env.

    Without a key in ``REGOLO_API_KEY`` a local server's ``~/.regolo/admin-key`` is used.
    """
    root = ctx.find_root()
    if not isinstance(root.obj, RegoloClient):
        root.obj = RegoloClient()
    return root.obj
