"""First start: the demo model in the library and a ``demo`` endpoint serving it."""

from __future__ import annotations

import logging

from regolo.server.demo import DEMO_MODEL_NAME, DEMO_VERSION, INSTALL_HINT, demo_gguf_path
from regolo.server.endpoints import service as endpoints
from regolo.server.library.service import add_local_version
from regolo.server.store.database import Database

log = logging.getLogger("regolo.demo")
DEMO_ENDPOINT = "demo"


def deploy_demo(db: Database, account_id: str) -> bool:
    """Register the demo model and deploy it with one replica; False if it is not installed."""
    path = demo_gguf_path()
    if path is None:
        log.warning("demo model not installed (%s); starting without it", INSTALL_HINT)
        return False
    with db.write() as session:
        add_local_version(
            session, account_id=account_id, name=DEMO_MODEL_NAME, version=DEMO_VERSION, path=path
        )
        endpoints.create_endpoint(
            session,
            account_id=account_id,
            name=DEMO_ENDPOINT,
            model=DEMO_MODEL_NAME,
            version=DEMO_VERSION,
            config=endpoints.EndpointConfig(replicas=1, instance_type="cpu-small"),
        )
    return True
