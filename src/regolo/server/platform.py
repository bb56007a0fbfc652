"""The platform's long-lived services, built once from settings and passed down."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from regolo.server.keys import KeyAuthenticator
from regolo.server.settings import Settings
from regolo.server.store.database import Database
from regolo.server.store.migrate import upgrade


@dataclass
class Platform:
    settings: Settings
    db: Database
    authenticator: KeyAuthenticator
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, settings: Settings) -> Platform:
        settings.home.mkdir(parents=True, exist_ok=True)
        db = Database(settings.resolved_database_url)
        upgrade(db.write_engine)
        authenticator = KeyAuthenticator(db, cache_seconds=settings.key_cache_seconds)
        return cls(settings=settings, db=db, authenticator=authenticator)

    def close(self) -> None:
        self.db.dispose()
