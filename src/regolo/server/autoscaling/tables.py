"""Tables of autoscaling: one policy per endpoint, the decision log, automated canary runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from regolo.server.store.tables import Base, utcnow


class AutoscalingPolicyRow(Base):
    __tablename__ = "autoscaling_policies"
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("endpoints.id"), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    policy: Mapped[dict[str, Any]] = mapped_column(JSON)  # ScalingPolicy.to_dict()
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class AutoscalingEvent(Base):
    """One decision that changed a deployment's replicas, or held it for a new reason."""

    __tablename__ = "autoscaling_events"
    __table_args__ = (Index("ix_autoscaling_events_endpoint_at", "endpoint_id", "at"),)
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("endpoints.id"))
    deployment_id: Mapped[str | None] = mapped_column(String(32), default=None)
    version: Mapped[str | None] = mapped_column(String(64), default=None)
    kind: Mapped[str] = mapped_column(String(16))  # scale | hold | canary
    at: Mapped[datetime] = mapped_column(default=utcnow)
    current_replicas: Mapped[int] = mapped_column(Integer, default=0)
    desired_replicas: Mapped[int] = mapped_column(Integer, default=0)
    reason: Mapped[str] = mapped_column(Text)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class CanaryRun(Base):
    """An automated canary: traffic steps, bounds, and how it ended."""

    __tablename__ = "canary_runs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("endpoints.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"))
    stable_version: Mapped[str] = mapped_column(String(64))
    new_version: Mapped[str] = mapped_column(String(64))
    deployment_id: Mapped[str] = mapped_column(String(32))
    steps: Mapped[list[float]] = mapped_column(JSON)  # traffic percentages, the last is 100
    step_index: Mapped[int] = mapped_column(Integer, default=0)
    step_interval_seconds: Mapped[float] = mapped_column(Float)
    rollback_on: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    min_requests: Mapped[int] = mapped_column(Integer, default=20)
    state: Mapped[str] = mapped_column(
        String(16), default="running"
    )  # running|promoted|rolled_back
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    step_started_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
