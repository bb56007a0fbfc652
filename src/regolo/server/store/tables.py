"""SQLAlchemy tables. Every schema change also gets an Alembic migration."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always hands back timezone-aware datetimes (SQLite drops the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value if value.tzinfo else value.replace(tzinfo=UTC)


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


class Account(Base):
    __tablename__ = "accounts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    is_superadmin: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(48))
    secret_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    rate_limit_rpm: Mapped[int | None] = mapped_column(Integer, default=None)
    rate_limit_tpm: Mapped[int | None] = mapped_column(Integer, default=None)
    created_by_key_id: Mapped[str | None] = mapped_column(String(32), default=None)


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    account_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Model(Base):
    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id"), index=True)
    version: Mapped[str] = mapped_column(String(64))
    source_kind: Mapped[str] = mapped_column(String(16))  # hf | local
    source_uri: Mapped[str] = mapped_column(String(1000))
    repo_id: Mapped[str | None] = mapped_column(String(200), default=None)
    revision: Mapped[str | None] = mapped_column(String(200), default=None)
    commit_sha: Mapped[str | None] = mapped_column(String(64), default=None)
    local_path: Mapped[str | None] = mapped_column(String(1000), default=None)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    status_reason: Mapped[str | None] = mapped_column(Text, default=None)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    files_done: Mapped[int] = mapped_column(Integer, default=0)
    files_total: Mapped[int] = mapped_column(Integer, default=0)
    facts: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    trust_remote_code: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Endpoint(Base):
    __tablename__ = "endpoints"
    __table_args__ = (UniqueConstraint("account_id", "name"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    model_id: Mapped[str] = mapped_column(ForeignKey("models.id"))
    status: Mapped[str] = mapped_column(String(32), default="pending")
    status_reason: Mapped[str | None] = mapped_column(Text, default=None)
    replicas: Mapped[int] = mapped_column(Integer, default=1)
    # None: follow ``replicas`` (no autoscaling range was set)
    min_replicas: Mapped[int | None] = mapped_column(Integer, default=None)
    max_replicas: Mapped[int | None] = mapped_column(Integer, default=None)
    target_utilization: Mapped[float | None] = mapped_column(Float, default=None)
    cpu_request: Mapped[str | None] = mapped_column(String(16), default=None)
    memory_request: Mapped[str | None] = mapped_column(String(16), default=None)
    cpu_limit: Mapped[str | None] = mapped_column(String(16), default=None)
    memory_limit: Mapped[str | None] = mapped_column(String(16), default=None)
    request_timeout_seconds: Mapped[float] = mapped_column(Float, default=60.0)
    enable_cache: Mapped[bool] = mapped_column(Boolean, default=False)
    enable_compression: Mapped[bool] = mapped_column(Boolean, default=False)
    instance_type: Mapped[str] = mapped_column(String(64), default="cpu-small")
    runtime: Mapped[str | None] = mapped_column(String(32), default=None)
    runtime_options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    visibility: Mapped[str] = mapped_column(String(16), default="account")  # account | keys
    allowed_key_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    max_concurrency: Mapped[int | None] = mapped_column(Integer, default=None)
    slo_p95_latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    slo_availability: Mapped[float | None] = mapped_column(Float, default=None)
    slo_error_rate: Mapped[float | None] = mapped_column(Float, default=None)
    stable_version: Mapped[str | None] = mapped_column(String(64), default=None)
    previous_stable_version: Mapped[str | None] = mapped_column(String(64), default=None)
    external_url: Mapped[str | None] = mapped_column(String(500), default=None)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(default=None)


class Deployment(Base):
    """One model version running inside an endpoint, with its traffic weight."""

    __tablename__ = "deployments"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("endpoints.id"), index=True)
    model_version_id: Mapped[str] = mapped_column(ForeignKey("model_versions.id"))
    version: Mapped[str] = mapped_column(String(64))
    traffic_weight: Mapped[float] = mapped_column(Float, default=0.0)
    replicas: Mapped[int] = mapped_column(Integer, default=1)
    failed_starts: Mapped[int] = mapped_column(Integer, default=0)  # since the last ready replica
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    next_start_at: Mapped[datetime | None] = mapped_column(default=None)  # restart backoff
    ever_ready: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(default=None)


class Replica(Base):
    __tablename__ = "replicas"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    deployment_id: Mapped[str] = mapped_column(ForeignKey("deployments.id"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="starting")
    backend: Mapped[str] = mapped_column(String(16))
    runtime: Mapped[str] = mapped_column(String(32))
    instance_type: Mapped[str] = mapped_column(String(64))
    address: Mapped[str | None] = mapped_column(String(200), default=None)
    pid: Mapped[int | None] = mapped_column(Integer, default=None)
    node: Mapped[str | None] = mapped_column(String(100), default=None)
    log_path: Mapped[str | None] = mapped_column(String(1000), default=None)
    auth_token: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    attempt: Mapped[int] = mapped_column(Integer, default=1)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    cpu_cores_used: Mapped[float | None] = mapped_column(Float, default=None)
    memory_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    # specs_builder.replica_fingerprint of its endpoint when it started (migration 0006)
    spec_fingerprint: Mapped[str | None] = mapped_column(String(16), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    ready_at: Mapped[datetime | None] = mapped_column(default=None)
    last_probe_at: Mapped[datetime | None] = mapped_column(default=None)
    drain_started_at: Mapped[datetime | None] = mapped_column(default=None)
    stopped_at: Mapped[datetime | None] = mapped_column(default=None)


class Lease(Base):
    """A named lease (controller leadership): held by one process until it expires."""

    __tablename__ = "leases"
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column()
