"""The runner end to end against a real HTTP replica: results, counts, files, R16, R17."""

from __future__ import annotations

import asyncio

import pytest

from regolo.server.batch import jobs
from tests.unit.batch.conftest import BatchWorld, chat_line, is_final, run_until

pytestmark = pytest.mark.timeout(60)


def test_a_batch_completes_with_one_result_per_custom_id(world: BatchWorld) -> None:
    batch_id = world.submit([chat_line(f"req-{i}") for i in range(20)])

    async def scenario() -> None:
        runner = world.runner()
        await run_until(runner, is_final(world, batch_id))
        await runner.close()

    asyncio.run(scenario())
    batch = world.batch(batch_id)
    assert batch.status == "completed"
    assert (batch.total, batch.completed, batch.failed) == (20, 20, 0)
    output = world.file_lines(batch.output_file_id)
    assert [line["custom_id"] for line in output] == [f"req-{i}" for i in range(20)]
    assert all(line["response"]["status_code"] == 200 and line["error"] is None for line in output)
    assert output[0]["response"]["body"]["choices"][0]["message"]["content"]
    assert batch.error_file_id is None
    assert world.replica.counters.requests == 20


def test_finalize_is_idempotent_and_byte_identical(world: BatchWorld) -> None:
    batch_id = world.submit([chat_line(f"req-{i}") for i in range(5)])

    async def scenario() -> None:
        runner = world.runner()
        await run_until(runner, is_final(world, batch_id))
        await runner.close()

    asyncio.run(scenario())
    batch = world.batch(batch_id)
    stored = b"".join(world.store.read_chunks(batch.output_file_id or ""))
    rebuilt, errors = jobs.build_files_for(world.db, batch_id, "completed")
    assert rebuilt == stored and errors == b""
    assert jobs.finalize(world.db, world.store, batch_id, world.clock()) is None  # already final
    assert b"".join(world.store.read_chunks(batch.output_file_id or "")) == stored


def test_bad_input_fails_the_batch_naming_every_line(world: BatchWorld) -> None:
    bad_url = chat_line("c")
    bad_url["url"] = "/v1/embeddings"
    missing = chat_line("x")
    del missing["custom_id"]
    lines = [chat_line("a"), b"{not json", missing, chat_line("a"), bad_url]
    batch_id = world.submit(lines)

    async def scenario() -> None:
        runner = world.runner()
        await run_until(runner, is_final(world, batch_id))
        await runner.close()

    asyncio.run(scenario())
    batch = world.batch(batch_id)
    assert batch.status == "failed"
    found = {(error["line"], error["code"]) for error in batch.errors or []}
    assert found == {
        (2, "invalid_json"),
        (3, "missing_custom_id"),
        (4, "duplicate_custom_id"),
        (5, "invalid_url"),
    }
    assert all(f"line {e['line']}" in e["message"] for e in batch.errors or [])
    assert world.replica.counters.requests == 0


def test_over_the_line_cap_fails_the_batch(world: BatchWorld) -> None:
    batch_id = world.submit([chat_line(f"r{i}") for i in range(4)])

    async def scenario() -> None:
        runner = world.runner(max_lines=3)
        await run_until(runner, is_final(world, batch_id))
        await runner.close()

    asyncio.run(scenario())
    batch = world.batch(batch_id)
    assert batch.status == "failed"
    assert [(e["line"], e["code"]) for e in batch.errors or []] == [(4, "too_many_requests")]


def test_per_request_errors_go_to_the_error_file(world: BatchWorld) -> None:
    lines = [chat_line("ok-1"), chat_line("too-long", max_tokens=10**9), chat_line("ok-2")]
    batch_id = world.submit(lines)

    async def scenario() -> None:
        runner = world.runner()
        await run_until(runner, is_final(world, batch_id))
        await runner.close()

    asyncio.run(scenario())
    batch = world.batch(batch_id)
    assert batch.status == "completed"
    assert (batch.completed, batch.failed) == (2, 1)
    assert [line["custom_id"] for line in world.file_lines(batch.output_file_id)] == [
        "ok-1",
        "ok-2",
    ]
    (error,) = world.file_lines(batch.error_file_id)
    assert error["custom_id"] == "too-long"
    assert error["response"]["status_code"] == 400
    assert error["response"]["body"]["error"]["param"] == "max_tokens"


def test_unknown_model_without_endpoint_names_the_line(world: BatchWorld) -> None:
    lines = [chat_line("a"), chat_line("b", model="nope")]
    batch_id = world.submit(lines, endpoint_name=None)

    async def scenario() -> None:
        runner = world.runner()
        await run_until(runner, is_final(world, batch_id))
        await runner.close()

    asyncio.run(scenario())
    batch = world.batch(batch_id)
    assert batch.status == "failed"
    assert [(e["line"], e["code"]) for e in batch.errors or []] == [(2, "model_not_found")]


def test_window_expiry_keeps_finished_lines(world: BatchWorld) -> None:
    world.replica.behaviour.mode = "slow"
    world.replica.behaviour.delay_seconds = 0.2
    batch_id = world.submit([chat_line(f"r{i}") for i in range(30)], window_seconds=3600)

    def expire_after_some_results() -> None:
        if world.batch(batch_id).completed >= 4:
            world.clock.advance(3601)

    async def scenario() -> None:
        runner = world.runner(max_inflight_per_batch=2)
        await run_until(runner, is_final(world, batch_id), between=expire_after_some_results)
        await runner.close()

    asyncio.run(scenario())
    batch = world.batch(batch_id)
    assert batch.status == "expired" and batch.expired_at is not None
    output = world.file_lines(batch.output_file_id)
    errors = world.file_lines(batch.error_file_id)
    assert len(output) == batch.completed >= 4
    assert {e["error"]["code"] for e in errors} == {"batch_expired"}
    ids = [line["custom_id"] for line in output + errors]
    assert sorted(ids) == sorted(f"r{i}" for i in range(30))  # each exactly once


def test_cancel_keeps_finished_lines(world: BatchWorld) -> None:
    world.replica.behaviour.mode = "slow"
    world.replica.behaviour.delay_seconds = 0.2
    batch_id = world.submit([chat_line(f"r{i}") for i in range(30)])

    def cancel_after_some_results() -> None:
        with world.db.write() as session:
            batch = session.get(jobs.BatchJob, batch_id)
            assert batch is not None
            if batch.completed >= 3 and batch.status == "in_progress":
                jobs.request_cancel(session, batch, world.clock())

    async def scenario() -> None:
        runner = world.runner(max_inflight_per_batch=2)
        await run_until(runner, is_final(world, batch_id), between=cancel_after_some_results)
        await runner.close()

    asyncio.run(scenario())
    batch = world.batch(batch_id)
    assert batch.status == "cancelled" and batch.cancelled_at is not None
    output = world.file_lines(batch.output_file_id)
    errors = world.file_lines(batch.error_file_id)
    assert len(output) == batch.completed >= 3
    assert {e["error"]["code"] for e in errors} == {"batch_cancelled"}
    assert len(output) + len(errors) == 30


def test_batch_yields_when_online_traffic_fills_the_replica(world: BatchWorld) -> None:
    world.online["rep_1"] = 3  # online requests hold every slot batch work may use
    batch_id = world.submit([chat_line(f"r{i}") for i in range(3)])

    async def scenario() -> None:
        runner = world.runner()
        for _ in range(10):
            await runner.step()
            await asyncio.sleep(0.02)
        assert world.replica.counters.requests == 0
        world.online["rep_1"] = 0
        await run_until(runner, is_final(world, batch_id))
        await runner.close()

    asyncio.run(scenario())
    assert world.batch(batch_id).status == "completed"


def test_a_restarted_runner_requeues_lines_left_running(world: BatchWorld) -> None:
    batch_id = world.submit([chat_line(f"r{i}") for i in range(3)])

    async def scenario() -> None:
        first = world.runner()
        await first.step()  # validates and starts workers
        claimed = jobs.claim_line(world.db, batch_id, world.clock(), 600)
        await first.close()
        world.clock.advance(601)  # any lease of the first runner has run out
        # a result for a claim from before the "crash" must not land twice
        second = world.runner()
        await run_until(second, is_final(world, batch_id))
        await second.close()
        if claimed is not None:
            late = jobs.LineResult(status_code=200, response_body="{}", request_id="late")
            assert not jobs.complete_line(world.db, claimed, late, world.clock())

    asyncio.run(scenario())
    batch = world.batch(batch_id)
    assert (batch.total, batch.completed) == (3, 3)
    assert len(world.file_lines(batch.output_file_id)) == 3


def test_at_most_n_running_batches_per_account(world: BatchWorld) -> None:
    world.replica.behaviour.mode = "slow"
    world.replica.behaviour.delay_seconds = 0.1
    first = world.submit([chat_line(f"a{i}") for i in range(4)])
    world.clock.advance(1)
    second = world.submit([chat_line(f"b{i}") for i in range(4)])

    async def scenario() -> None:
        runner = world.runner(max_running_per_account=1)
        await runner.step()
        assert world.batch(first).status == "in_progress"
        assert world.batch(second).status == "validating"  # queued behind the first
        await run_until(runner, is_final(world, second))
        await runner.close()

    asyncio.run(scenario())
    assert world.batch(first).status == world.batch(second).status == "completed"


def test_a_batch_still_queued_when_its_window_ends_expires(world: BatchWorld) -> None:
    first = world.submit([chat_line("a")], window_seconds=86400)
    queued = world.submit([chat_line("b")], window_seconds=60)
    with world.db.write() as session:
        batch = session.get(jobs.BatchJob, first)
        assert batch is not None
        batch.status = "in_progress"  # holds the account's only slot

    async def scenario() -> None:
        runner = world.runner(max_running_per_account=1)
        world.clock.advance(61)
        await runner.step()
        await runner.close()

    asyncio.run(scenario())
    assert world.batch(queued).status == "expired"
