"""Server settings: the only module that reads the environment."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Role = Literal["all", "api", "gateway", "controller"]


def _default_cdn_hosts() -> list[str]:
    from regolo.server.hub.safety import DEFAULT_CDN_HOSTS

    return list(DEFAULT_CDN_HOSTS)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="REGOLO_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path.home() / ".regolo")
    database_url: str | None = None  # default: SQLite under home
    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str | None = None  # default http://host:port
    endpoint_domain: str | None = None  # host form <endpoint>.<domain>
    log_level: str = "info"
    role: Role = "all"

    backend: Literal["local", "fake", "ray"] = "local"
    ray_address: str | None = None
    allowed_local_roots: list[Path] = Field(default_factory=list)
    hf_endpoint: str = Field(default="https://huggingface.co", validation_alias="HF_ENDPOINT")
    hf_token: str | None = Field(default=None, validation_alias="HF_TOKEN")
    # Hosts the hub may redirect file downloads to (its CDNs); nothing else is contacted.
    hf_allowed_redirect_hosts: list[str] = Field(default_factory=_default_cdn_hosts)
    price_book_path: Path | None = None

    max_body_bytes: int = 4 * 1024 * 1024
    max_tokens_cap: int = 32768
    max_n_cap: int = 8
    metrics_token: str | None = None  # lets a Prometheus scraper read /metrics without a key
    key_cache_seconds: float = 5.0  # revocation and expiry take effect within this time
    reconcile_interval_seconds: float = 1.0
    health_interval_seconds: float = 2.0
    routing_refresh_seconds: float = 5.0
    leader_lease_seconds: float = 10.0
    replica_start_timeout_seconds: float = 120.0
    health_probe_timeout_seconds: float = 15.0
    replica_max_start_attempts: int = 3
    demo: bool = True

    # Batch API (regolo.server.batch.limits reads these; None keeps its default).
    batch_max_lines: int | None = None
    batch_max_file_bytes: int = 500 * 1024 * 1024  # also the upload cap of POST /v1/files
    batch_max_line_bytes: int | None = None
    batch_max_running_per_account: int | None = None
    batch_max_inflight_per_batch: int | None = None
    batch_slots_per_replica: int | None = None
    batch_queue_ahead_per_replica: int | None = None
    batch_resume_after_online_seconds: float | None = None
    batch_lease_seconds: float | None = None
    batch_max_attempts: int | None = None

    # Billing (regolo.server.billing.config reads these).
    billing_initial_credit: Decimal = Decimal("100.00")  # granted once to every account
    billing_low_balance_threshold: Decimal = Decimal("10.00")
    billing_pause_lead_seconds: float = 300.0
    billing_meter_interval_seconds: float = 30.0
    billing_invoice_grace_seconds: float = 600.0
    billing_enforce_credit: bool = True
    # A graceful stop of `regolo serve` stops its replicas; after a crash (kill -9) they
    # keep running and the next start re-adopts them.
    stop_replicas_on_exit: bool = True

    @field_validator("home")
    @classmethod
    def _absolute_home(cls, home: Path) -> Path:
        return home.expanduser().resolve()

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'regolo.db'}"

    @property
    def base_url(self) -> str:
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    def endpoint_url(self, endpoint_name: str) -> str:
        if self.endpoint_domain:
            scheme = "https" if self.base_url.startswith("https") else "http"
            return f"{scheme}://{endpoint_name}.{self.endpoint_domain}/v1"
        return f"{self.base_url}/endpoints/{endpoint_name}/v1"

    @property
    def files_dir(self) -> Path:
        return self.home / "files"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


def load_settings(**overrides: object) -> Settings:
    return Settings(**overrides)  # type: ignore[arg-type]
