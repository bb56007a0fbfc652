"""Tables of the batch API: uploaded and produced files, batch jobs, and one row per line.

A line's result lives on its own row and is written in the same transaction that marks
the line done, so a crash can lose an in-flight request but never a recorded result.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from regolo.server.store.tables import Base, utcnow


class BatchFile(Base):
    __tablename__ = "batch_files"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(32))  # the key that uploaded it
    endpoint_name: Mapped[str | None] = mapped_column(String(63), default=None)
    purpose: Mapped[str] = mapped_column(String(16))  # batch | batch_output | batch_error
    filename: Mapped[str] = mapped_column(String(255))
    bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class BatchJob(Base):
    __tablename__ = "batch_jobs"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.id"), index=True)
    key_id: Mapped[str] = mapped_column(String(32))
    scopes: Mapped[list[str]] = mapped_column(JSON)  # of the creating key, for line resolution
    endpoint_name: Mapped[str | None] = mapped_column(String(63), default=None)
    url: Mapped[str] = mapped_column(String(64))
    completion_window: Mapped[str] = mapped_column(String(16))
    input_file_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="validating", index=True)
    outcome: Mapped[str | None] = mapped_column(String(16), default=None)  # final status
    errors: Mapped[list[Any] | None] = mapped_column(JSON, default=None)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, default=None)
    output_file_id: Mapped[str | None] = mapped_column(String(64), default=None)
    error_file_id: Mapped[str | None] = mapped_column(String(64), default=None)
    total: Mapped[int] = mapped_column(Integer, default=0)
    completed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column()
    in_progress_at: Mapped[datetime | None] = mapped_column(default=None)
    finalizing_at: Mapped[datetime | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(default=None)
    failed_at: Mapped[datetime | None] = mapped_column(default=None)
    expired_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelling_at: Mapped[datetime | None] = mapped_column(default=None)
    cancelled_at: Mapped[datetime | None] = mapped_column(default=None)


class BatchLine(Base):
    __tablename__ = "batch_lines"
    __table_args__ = (
        UniqueConstraint("batch_id", "custom_id"),
        Index("ix_batch_lines_claim", "batch_id", "state", "line_no"),
    )
    batch_id: Mapped[str] = mapped_column(ForeignKey("batch_jobs.id"), primary_key=True)
    line_no: Mapped[int] = mapped_column(Integer, primary_key=True)  # 1-based, as in the file
    custom_id: Mapped[str] = mapped_column(String(128))
    endpoint_name: Mapped[str] = mapped_column(String(63))
    body: Mapped[str] = mapped_column(Text)  # the request body, JSON
    state: Mapped[str] = mapped_column(String(16), default="pending")  # pending|running|done
    claim_token: Mapped[str | None] = mapped_column(String(32), default=None)
    lease_until: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    request_id: Mapped[str | None] = mapped_column(String(64), default=None)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    response_body: Mapped[str | None] = mapped_column(Text, default=None)  # JSON text
    error_code: Mapped[str | None] = mapped_column(String(64), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)
