"""``regolo serve``: the whole platform in one process (or one role of it)."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import select

from regolo.server.accounts import DEFAULT_ACCOUNT, bootstrap
from regolo.server.app import create_app
from regolo.server.gateway.gc_tuning import tune_gc_for_serving
from regolo.server.library.demo import DEMO_ENDPOINT, deploy_demo
from regolo.server.platform import Platform
from regolo.server.settings import Settings
from regolo.server.store.tables import Account, Endpoint

log = logging.getLogger("regolo")
DEMO_READY_TIMEOUT_SECONDS = 600


def serve(
    *,
    host: str | None = None,
    port: int | None = None,
    role: str | None = None,
    demo: bool = True,
    home: Path | None = None,
    settings: Settings | None = None,
) -> None:
    overrides: dict[str, Any] = {
        k: v
        for k, v in {"host": host, "port": port, "role": role, "home": home}.items()
        if v is not None
    }
    settings = settings or Settings(**overrides)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    platform = Platform.open(settings)
    admin_key = bootstrap(platform.db, settings.home)
    demo_deployed = False
    if admin_key is not None and demo and settings.demo and settings.role in ("all", "controller"):
        demo_deployed = deploy_demo(platform.db, _default_account_id(platform))
    _print_banner(settings, admin_key)
    if demo_deployed:
        threading.Thread(
            target=_announce_when_ready, args=(platform, settings, admin_key), daemon=True
        ).start()
    app = create_app(settings, platform)
    tune_gc_for_serving()  # everything long-lived is built by now; see gc_tuning
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        lifespan="on",
    )


def _default_account_id(platform: Platform) -> str:
    with platform.db.read() as session:
        account_id = session.scalar(select(Account.id).where(Account.name == DEFAULT_ACCOUNT))
    assert account_id is not None
    return account_id


def _gateway_build() -> str:
    import regolo.server.gateway.app as gateway_app

    if gateway_app.__file__ and not gateway_app.__file__.endswith(".py"):
        return "compiled (mypyc)"
    return "Python (python -m regolo.server.gateway.speedups compiles it)"


def _print_banner(settings: Settings, admin_key: str | None) -> None:
    key_file = settings.home / "admin-key"
    lines = [
        "",
        "Regolo Endpoints is starting",
        f"  Dashboard : {settings.base_url}/",
        f"  API       : {settings.base_url}/v1  (OpenAPI: {settings.base_url}/openapi.json)",
        f"  Database  : {_safe_url(settings.resolved_database_url)}",
        f"  Gateway   : {_gateway_build()}",
        f"  Admin key : {key_file}",
    ]
    if admin_key is not None:
        lines += [
            "",
            "  Your admin key (shown once, also saved to the file above):",
            f"    {admin_key}",
        ]
    print("\n".join(lines) + "\n", flush=True)


def _safe_url(url: str) -> str:
    """The database URL without its password."""
    if "@" not in url:
        return url
    scheme, _, rest = url.partition("://")
    return f"{scheme}://***@{rest.split('@', 1)[1]}"


def _announce_when_ready(platform: Platform, settings: Settings, admin_key: str | None) -> None:
    deadline = time.monotonic() + DEMO_READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        time.sleep(1)
        try:
            with platform.db.read() as session:
                status = session.scalar(
                    select(Endpoint.status).where(Endpoint.name == DEMO_ENDPOINT)
                )
        except Exception:  # the store may be closing at shutdown
            return
        if status == "ready":
            break
        if status == "failed":
            print("The demo endpoint failed to start; see `regolo endpoints get demo`.", flush=True)
            return
    else:
        return
    key = admin_key or f"$(cat {settings.home / 'admin-key'})"
    print(ready_message(settings.base_url, key), flush=True)


def ready_message(base_url: str, key: str) -> str:
    """The copy-paste examples printed once the demo endpoint answers."""
    body = json.dumps({"model": DEMO_ENDPOINT, "messages": [{"role": "user", "content": "Hello!"}]})
    return f"""
The demo endpoint is ready. Try it:

  curl {base_url}/v1/chat/completions \\
    -H "Authorization: Bearer {key}" \\
    -H "Content-Type: application/json" \\
    -d '{body}'

  # Python (pip install openai)
  from openai import OpenAI
  client = OpenAI(base_url="{base_url}/v1", api_key="{key}")
  reply = client.chat.completions.create(
      model="{DEMO_ENDPOINT}", messages=[{{"role": "user", "content": "Hello!"}}]
  )
  print(reply.choices[0].message.content)
"""
