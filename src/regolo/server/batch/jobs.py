"""Batch state in the store: create, validate, claim and complete lines, finalize.

Each function is one transaction. A line moves pending -> running (claimed with a
token and a lease) -> done; ``complete_line`` only lands while the claim token still
matches, and bumps the batch's counters in the same transaction, so every result is
recorded exactly once whatever crashes in between.
"""

from __future__ import annotations

import functools
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, Select, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.orm import Session

from regolo.server.batch.access import scopes_may_call
from regolo.server.batch.files import FileStore
from regolo.server.batch.formats import LineError, ParsedLine, parse_lines
from regolo.server.batch.limits import BatchLimits
from regolo.server.batch.results import LineRecord, build_result_files
from regolo.server.batch.status import ACTIVE, FINAL, UNFINISHED, BatchStatus, LineState
from regolo.server.batch.tables import BatchFile, BatchJob, BatchLine
from regolo.server.store.database import Database
from regolo.server.store.tables import Endpoint, Model


@dataclass(frozen=True, kw_only=True)
class ClaimedLine:
    batch_id: str
    account_id: str
    key_id: str
    url: str
    line_no: int
    custom_id: str
    endpoint_name: str
    body: dict[str, Any]
    token: str


@dataclass(frozen=True, kw_only=True)
class LineResult:
    request_id: str | None = None
    status_code: int | None = None  # None: the model was never reached
    response_body: str | None = None
    error_code: str | None = None
    error_message: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


# ---- validation -------------------------------------------------------------------


def next_to_validate(db: Database, max_running_per_account: int) -> str | None:
    """The oldest validating batch whose account has room for one more running batch."""
    with db.read() as session:
        active = dict(
            session.execute(
                select(BatchJob.account_id, func.count())
                .where(BatchJob.status.in_(list(ACTIVE)))
                .group_by(BatchJob.account_id)
            ).all()
        )
        waiting = session.execute(
            select(BatchJob.id, BatchJob.account_id)
            .where(BatchJob.status == BatchStatus.VALIDATING)
            .order_by(BatchJob.created_at, BatchJob.id)
        ).all()
    for batch_id, account_id in waiting:
        if active.get(account_id, 0) < max_running_per_account:
            return str(batch_id)
    return None


def expire_waiting(db: Database, now: datetime) -> int:
    """Batches still queued for validation when their window ends expire with no lines."""
    with db.write() as session:
        waiting = session.scalars(
            select(BatchJob).where(
                BatchJob.status == BatchStatus.VALIDATING, BatchJob.expires_at <= now
            )
        ).all()
        for batch in waiting:
            batch.status, batch.outcome, batch.expired_at = (
                BatchStatus.EXPIRED,
                BatchStatus.EXPIRED,
                now,
            )
        return len(waiting)


def validate_batch(
    db: Database, store: FileStore, limits: BatchLimits, batch_id: str, now: datetime
) -> str:
    """Parse the input file and store its lines, or fail the batch naming the lines."""
    with db.read() as session:
        batch = session.get(BatchJob, batch_id)
        if batch is None or batch.status != BatchStatus.VALIDATING:
            return "skipped"
        url, endpoint_name, account_id = batch.url, batch.endpoint_name, batch.account_id
        scopes, input_file_id = list(batch.scopes), batch.input_file_id
        endpoints = _endpoint_names(session, account_id)
    try:
        parsed = parse_lines(store.iter_lines(input_file_id), url, limits)
    except (FileNotFoundError, OSError):
        parsed = None
    if parsed is None:
        errors = [LineError(line=None, code="file_missing", message="the input file is gone")]
        return _fail(db, batch_id, errors, now)
    errors = list(parsed.errors)
    targets = _line_endpoints(parsed.lines, endpoint_name, endpoints, scopes, errors)
    if errors:
        return _fail(db, batch_id, errors[: limits.max_validation_errors], now)
    return _start(db, batch_id, parsed.lines, targets, now)


def _endpoint_names(session: Session, account_id: str) -> dict[str, str]:
    """Every name a line's ``model`` may use -> the endpoint's name (endpoint names win)."""
    rows = session.execute(
        select(Endpoint.name, Model.name)
        .join(Model, Model.id == Endpoint.model_id)
        .where(Endpoint.account_id == account_id, Endpoint.deleted_at.is_(None))
        .order_by(Endpoint.created_at)
    ).all()
    names: dict[str, str] = {}
    for _, model_name in rows:
        names.setdefault(model_name, _)
    names.update({name: name for name, _ in rows})
    return names


def _line_endpoints(
    lines: list[ParsedLine],
    endpoint_name: str | None,
    endpoints: dict[str, str],
    scopes: list[str],
    errors: list[LineError],
) -> list[str]:
    if endpoint_name is not None:
        return [endpoint_name] * len(lines)
    targets = []
    for line in lines:
        target = endpoints.get(line.model or "")
        if target is None or not scopes_may_call(scopes, target):
            shown = (line.model or "")[:100]
            message = (
                f"line {line.line_no}: the model {shown!r} does not exist "
                "or you do not have access to it"
            )
            if line.model is None:
                message = (
                    f"line {line.line_no}: model is missing and the batch names no endpoint_id"
                )
            errors.append(
                LineError(line=line.line_no, code="model_not_found", message=message, param="model")
            )
        targets.append(target or "")
    return targets


def _fail(db: Database, batch_id: str, errors: list[LineError], now: datetime) -> str:
    with db.write() as session:
        batch = session.get(BatchJob, batch_id)
        if batch is None or batch.status != BatchStatus.VALIDATING:
            return "skipped"
        batch.status, batch.failed_at = BatchStatus.FAILED, now
        batch.errors = [error.as_json() for error in errors]
    return BatchStatus.FAILED


def _start(
    db: Database, batch_id: str, lines: list[ParsedLine], targets: list[str], now: datetime
) -> str:
    rows = [
        {
            "batch_id": batch_id,
            "line_no": line.line_no,
            "custom_id": line.custom_id,
            "endpoint_name": target,
            "body": json.dumps(line.body, separators=(",", ":"), ensure_ascii=False),
            "state": LineState.PENDING,
            "attempts": 0,
        }
        for line, target in zip(lines, targets, strict=True)
    ]
    with db.write() as session:
        batch = session.get(BatchJob, batch_id)
        if batch is None or batch.status != BatchStatus.VALIDATING:
            return "skipped"
        session.execute(insert(BatchLine), rows)
        batch.status, batch.in_progress_at, batch.total = BatchStatus.IN_PROGRESS, now, len(rows)
    return BatchStatus.IN_PROGRESS


# ---- lines --------------------------------------------------------------------------


def claim_line(
    db: Database, batch_id: str, now: datetime, lease_seconds: float
) -> ClaimedLine | None:
    """Take the first pending line (or one whose lease ran out) of an in-progress batch."""
    with db.write() as session:
        connection = session.connection()
        batch = connection.execute(_BATCH, {"batch_id": batch_id}).first()
        claimed = _claim(connection, batch_id, batch, 1, now, lease_seconds)
        return claimed[0] if claimed else None


def complete_line(db: Database, claimed: ClaimedLine, result: LineResult, now: datetime) -> bool:
    """Record a line's result and count it, once; ``False`` if the claim was lost."""
    with db.write() as session:
        connection = session.connection()
        return _complete(connection, claimed.batch_id, [(claimed, result)], now) == 1


def finish_lines(
    db: Database,
    finished: list[tuple[ClaimedLine, LineResult, bool]],
    now: datetime,
    lease_seconds: float,
) -> list[ClaimedLine | None]:
    """``complete_line`` for each result then, where asked, ``claim_line`` of its batch:
    one transaction for results that finished together."""
    by_batch: dict[str, list[tuple[ClaimedLine, LineResult]]] = {}
    wanted: dict[str, int] = {}
    for claimed, result, claim_next in finished:
        by_batch.setdefault(claimed.batch_id, []).append((claimed, result))
        wanted[claimed.batch_id] = wanted.get(claimed.batch_id, 0) + claim_next
    following: dict[str, list[ClaimedLine]] = {}
    with db.write() as session:
        connection = session.connection()
        for batch_id, results in by_batch.items():
            _complete(connection, batch_id, results, now)
            if wanted[batch_id]:
                batch = connection.execute(_BATCH, {"batch_id": batch_id}).first()
                following[batch_id] = _claim(
                    connection, batch_id, batch, wanted[batch_id], now, lease_seconds
                )
    return [
        (following[claimed.batch_id].pop(0) if following.get(claimed.batch_id) else None)
        if claim_next
        else None
        for claimed, _, claim_next in finished
    ]


# Every line is claimed and completed once, so these statements are built once: building
# the expressions and their cache keys anew for each line was most of the CPU a line
# cost the store (about 1.6 of 2 ms, measured with cProfile on SQLite).
_BATCH = select(BatchJob.status, BatchJob.account_id, BatchJob.key_id, BatchJob.url).where(
    BatchJob.id == bindparam("batch_id")
)
# The batch row lock orders completions against ``finalize``: once it holds the lock, no
# line lands.
_BATCH_STATUS_LOCKED = (
    select(BatchJob.status).where(BatchJob.id == bindparam("batch_id")).with_for_update()
)
_COUNT = (
    update(BatchJob)
    .where(BatchJob.id == bindparam("batch_id"))
    .values(
        completed=BatchJob.completed + bindparam("add_completed"),
        failed=BatchJob.failed + bindparam("add_failed"),
    )
)
_COMPLETE = (
    update(BatchLine)
    .where(
        BatchLine.batch_id == bindparam("b_batch_id"),
        BatchLine.line_no == bindparam("b_line_no"),
        BatchLine.state == LineState.RUNNING,
        BatchLine.claim_token == bindparam("b_token"),
    )
    .values(
        state=LineState.DONE,
        lease_until=None,
        request_id=bindparam("r_request_id"),
        status_code=bindparam("r_status_code"),
        response_body=bindparam("r_response_body"),
        error_code=bindparam("r_error_code"),
        error_message=bindparam("r_error_message"),
        finished_at=bindparam("r_finished_at"),
    )
)
_TAKE = (
    update(BatchLine)
    .where(
        BatchLine.batch_id == bindparam("b_batch_id"), BatchLine.line_no == bindparam("b_line_no")
    )
    .values(
        state=LineState.RUNNING,
        claim_token=bindparam("b_token"),
        lease_until=bindparam("b_lease_until"),
        attempts=BatchLine.attempts + 1,
    )
)


@functools.cache
def _claimable(count: int) -> Select[int, str, str, str]:
    """The first ``count`` lines free to claim: pending, or running on a lease run out."""
    return (
        select(BatchLine.line_no, BatchLine.custom_id, BatchLine.endpoint_name, BatchLine.body)
        .where(
            BatchLine.batch_id == bindparam("batch_id"),
            or_(
                BatchLine.state == LineState.PENDING,
                and_(
                    BatchLine.state == LineState.RUNNING, BatchLine.lease_until < bindparam("now")
                ),
            ),
        )
        .order_by(BatchLine.line_no)
        .limit(count)
        .with_for_update(skip_locked=True)
    )


def _claim(
    connection: Connection,
    batch_id: str,
    batch: Row[str, str, str, str] | None,
    count: int,
    now: datetime,
    lease_seconds: float,
) -> list[ClaimedLine]:
    if batch is None or batch.status != BatchStatus.IN_PROGRESS:
        return []
    lines = connection.execute(_claimable(count), {"batch_id": batch_id, "now": now}).all()
    if not lines:
        return []
    lease_until = now + timedelta(seconds=lease_seconds)
    claimed = [
        ClaimedLine(
            batch_id=batch_id,
            account_id=batch.account_id,
            key_id=batch.key_id,
            url=batch.url,
            line_no=line.line_no,
            custom_id=line.custom_id,
            endpoint_name=line.endpoint_name,
            body=json.loads(line.body),
            token=secrets.token_hex(8),
        )
        for line in lines
    ]
    connection.execute(
        _TAKE,
        [
            {
                "b_batch_id": batch_id,
                "b_line_no": line.line_no,
                "b_token": line.token,
                "b_lease_until": lease_until,
            }
            for line in claimed
        ],
    )
    return claimed


def _complete(
    connection: Connection,
    batch_id: str,
    results: list[tuple[ClaimedLine, LineResult]],
    now: datetime,
) -> int:
    """Record the results of one batch's lines whose claims still hold; how many landed."""
    status = connection.execute(_BATCH_STATUS_LOCKED, {"batch_id": batch_id}).scalar()
    if status is None or status in FINAL:
        return 0  # finalized already: its files are written and must not change
    succeeded = failed = 0
    for claimed, result in results:
        landed = connection.execute(
            _COMPLETE,
            {
                "b_batch_id": batch_id,
                "b_line_no": claimed.line_no,
                "b_token": claimed.token,
                "r_request_id": result.request_id,
                "r_status_code": result.status_code,
                "r_response_body": result.response_body,
                "r_error_code": result.error_code,
                "r_error_message": result.error_message,
                "r_finished_at": now,
            },
        )
        if _rowcount(landed) == 1:
            succeeded += result.succeeded
            failed += not result.succeeded
    if succeeded or failed:
        connection.execute(
            _COUNT, {"batch_id": batch_id, "add_completed": succeeded, "add_failed": failed}
        )
    return succeeded + failed


def release_line(db: Database, claimed: ClaimedLine) -> None:
    """Give a claimed line back unrun (its batch is stopping, or no replica is ready)."""
    with db.write() as session:
        session.execute(
            update(BatchLine)
            .where(
                BatchLine.batch_id == claimed.batch_id,
                BatchLine.line_no == claimed.line_no,
                BatchLine.claim_token == claimed.token,
                BatchLine.state == LineState.RUNNING,
            )
            .values(state=LineState.PENDING, claim_token=None, lease_until=None)
        )


def release_all_running(db: Database) -> int:
    """At start: lines left running by a dead runner go back to the queue."""
    with db.write() as session:
        return _rowcount(
            session.execute(
                update(BatchLine)
                .where(BatchLine.state == LineState.RUNNING)
                .values(state=LineState.PENDING, claim_token=None, lease_until=None)
            )
        )


# ---- batch transitions ----------------------------------------------------------------


def unfinished_batches(db: Database) -> dict[str, tuple[str, datetime]]:
    """Every batch not final yet -> its status and the end of its window, oldest first."""
    with db.read() as session:
        rows = session.execute(
            select(BatchJob.id, BatchJob.status, BatchJob.expires_at)
            .where(BatchJob.status.in_(list(UNFINISHED)))
            .order_by(BatchJob.created_at)
        ).all()
    return {batch_id: (status, expires_at) for batch_id, status, expires_at in rows}


def advance(db: Database, batch_id: str, now: datetime) -> str | None:
    """An in-progress batch goes to finalizing when its window ends or no line is left."""
    with db.write() as session:
        batch = session.get(BatchJob, batch_id)
        if batch is None or batch.status != BatchStatus.IN_PROGRESS:
            return None
        if now >= batch.expires_at:
            batch.status, batch.outcome, batch.finalizing_at = (
                BatchStatus.FINALIZING,
                BatchStatus.EXPIRED,
                now,
            )
            return BatchStatus.EXPIRED
        unfinished = session.scalar(
            select(func.count())
            .select_from(BatchLine)
            .where(BatchLine.batch_id == batch_id, BatchLine.state != LineState.DONE)
        )
        if unfinished:
            return None
        batch.status, batch.outcome, batch.finalizing_at = (
            BatchStatus.FINALIZING,
            BatchStatus.COMPLETED,
            now,
        )
        return BatchStatus.COMPLETED


def request_cancel(session: Session, batch: BatchJob, now: datetime) -> None:
    if batch.status == BatchStatus.VALIDATING:
        # Nothing ran: the batch can end at once.
        batch.status, batch.outcome = BatchStatus.CANCELLED, BatchStatus.CANCELLED
        batch.cancelling_at = batch.cancelled_at = now
    elif batch.status in (BatchStatus.IN_PROGRESS, BatchStatus.FINALIZING):
        if batch.status == BatchStatus.FINALIZING and batch.outcome != BatchStatus.EXPIRED:
            return  # every line is done: completing is as good as it gets
        batch.status, batch.outcome, batch.cancelling_at = (
            BatchStatus.CANCELLING,
            BatchStatus.CANCELLED,
            now,
        )


def in_flight(db: Database, batch_id: str, now: datetime) -> int:
    with db.read() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(BatchLine)
                .where(
                    BatchLine.batch_id == batch_id,
                    BatchLine.state == LineState.RUNNING,
                    BatchLine.lease_until >= now,
                )
            )
            or 0
        )


def output_file_ids(batch_id: str) -> tuple[str, str]:
    """Fixed per batch, so a finalize repeated after a crash rewrites the same files."""
    suffix = batch_id.removeprefix("batch_")
    return f"file-{suffix}out", f"file-{suffix}err"


def build_files_for(db: Database, batch_id: str, outcome: str) -> tuple[bytes, bytes]:
    output, errors, _ = _build_files(db, batch_id, outcome)
    return output, errors


def _build_files(db: Database, batch_id: str, outcome: str) -> tuple[bytes, bytes, int]:
    """Both files, and how many lines were done when they were built."""
    with db.read() as session:
        records = [
            LineRecord(
                line_no=line.line_no,
                custom_id=line.custom_id,
                state=line.state,
                request_id=line.request_id,
                status_code=line.status_code,
                response_body=line.response_body,
                error_code=line.error_code,
                error_message=line.error_message,
            )
            for line in session.scalars(select(BatchLine).where(BatchLine.batch_id == batch_id))
        ]
    files = build_result_files(batch_id, outcome, records)
    done = sum(1 for record in records if record.state == LineState.DONE)
    return files.output, files.errors, done


def finalize(db: Database, store: FileStore, batch_id: str, now: datetime) -> str | None:
    """Write the result files and end the batch; a repeat after a crash is harmless."""
    with db.read() as session:
        batch = session.get(BatchJob, batch_id)
        if batch is None or batch.status not in (BatchStatus.FINALIZING, BatchStatus.CANCELLING):
            return None
        outcome = batch.outcome or BatchStatus.COMPLETED
    if in_flight(db, batch_id, now):
        return None
    output, errors, done = _build_files(db, batch_id, outcome)
    output_id, error_id = output_file_ids(batch_id)
    for file_id, data in ((output_id, output), (error_id, errors)):
        if data:
            store.write_bytes(file_id, data)
    with db.write() as session:
        # The batch row lock orders this against complete_line: once held, no line lands.
        batch = session.get(BatchJob, batch_id, with_for_update=True)
        if batch is None or batch.status not in (BatchStatus.FINALIZING, BatchStatus.CANCELLING):
            return None
        if batch.completed + batch.failed != done:
            return None  # a late result landed after the files were built: build again
        for file_id, data, purpose in (
            (output_id, output, "batch_output"),
            (error_id, errors, "batch_error"),
        ):
            if data and session.get(BatchFile, file_id) is None:
                session.add(_result_file(batch, file_id, purpose, len(data), now))
        batch.output_file_id = output_id if output else None
        batch.error_file_id = error_id if errors else None
        batch.status = BatchStatus(outcome)
        setattr(batch, f"{outcome}_at", now)
        return outcome


def _result_file(
    batch: BatchJob, file_id: str, purpose: str, size: int, now: datetime
) -> BatchFile:
    suffix = "output" if purpose == "batch_output" else "errors"
    return BatchFile(
        id=file_id,
        account_id=batch.account_id,
        key_id=batch.key_id,
        endpoint_name=batch.endpoint_name,
        purpose=purpose,
        filename=f"{batch.id}_{suffix}.jsonl",
        bytes=size,
        created_at=now,
    )


def _rowcount(result: Any) -> int:
    """Rows an UPDATE matched (``CursorResult.rowcount``; typed loosely by SQLAlchemy)."""
    return int(getattr(result, "rowcount", 0) or 0)
