"""Online traffic first: batch work fills every free slot, and an online request that
starts on a replica cancels the batch requests running there; their lines run again
later with exactly one result each and no attempt counted."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from regolo.server.batch.tables import BatchLine
from regolo.server.gateway.picker import ReplicaPicker
from tests.support.fake_openai_server import FakeOpenAIServer
from tests.unit.batch.conftest import BatchWorld, chat_line, is_final, run_until

pytestmark = pytest.mark.timeout(60)


def in_flight(replica: FakeOpenAIServer) -> int:
    return sum(1 for connection in list(replica.connections) if connection.busy)


def slow_streams(world: BatchWorld) -> None:
    world.replica.behaviour.stream_chunks = 10
    world.replica.behaviour.chunk_delay_seconds = 0.05  # about half a second a line


def attempts(world: BatchWorld, batch_id: str) -> list[int]:
    with world.db.read() as session:
        return list(
            session.scalars(select(BatchLine.attempts).where(BatchLine.batch_id == batch_id))
        )


def test_without_online_traffic_batch_work_fills_every_slot_and_queues_ahead(
    world: BatchWorld,
) -> None:
    slow_streams(world)
    batch_id = world.submit([chat_line(f"r{i}") for i in range(12)])
    peak = 0

    def watch() -> None:
        nonlocal peak
        peak = max(peak, in_flight(world.replica))

    async def scenario() -> None:
        runner = world.runner(max_inflight_per_batch=32)
        await run_until(runner, is_final(world, batch_id), between=watch)
        await runner.close()

    asyncio.run(scenario())
    limits = world.limits
    assert (limits.slots_per_replica, limits.queue_ahead_per_replica) == (4, 4)
    assert peak == 8  # four slots busy, four lines waiting in the replica's queue
    assert world.batch(batch_id).completed == 12


def test_online_traffic_just_before_a_batch_keeps_its_lines_out_of_the_replica_queue(
    world: BatchWorld,
) -> None:
    slow_streams(world)
    picker = ReplicaPicker()
    world.online = picker.outstanding
    peak = 0

    def watch() -> None:
        nonlocal peak
        peak = max(peak, in_flight(world.replica))

    async def scenario() -> None:
        runner = world.runner(resume_after_online_seconds=0.05, max_inflight_per_batch=32)
        picker.on_change = runner.notice_online
        # An online request ends on the replica while no batch runs ...
        await asyncio.to_thread(picker.started, "rep_1")
        await asyncio.to_thread(picker.finished, "rep_1", failed=False)
        await asyncio.sleep(0.1)
        # ... so a batch submitted now fills the slots but queues nothing ahead: an
        # online request may well come again soon.
        batch_id = world.submit([chat_line(f"r{i}") for i in range(12)])
        await run_until(runner, is_final(world, batch_id), between=watch)
        await runner.close()

    asyncio.run(scenario())
    assert peak == 4


def test_an_online_request_preempts_batch_requests_on_its_replica(world: BatchWorld) -> None:
    slow_streams(world)
    picker = ReplicaPicker()  # the gateway's own, as the platform wires it
    world.online = picker.outstanding
    batch_id = world.submit([chat_line(f"r{i}") for i in range(6)])

    async def scenario() -> None:
        runner = world.runner(resume_after_online_seconds=0.05)
        picker.on_change = runner.notice_online
        await run_until(runner, lambda: in_flight(world.replica) == 4)
        # The gateway starts an online request on the replica, from its own thread.
        await asyncio.to_thread(picker.started, "rep_1")
        await run_until(runner, lambda: world.replica.counters.cancellations == 4)
        assert runner.preemptions == 4
        for _ in range(10):  # nothing of the batch starts while the online request runs
            await runner.step()
            await asyncio.sleep(0.02)
        assert in_flight(world.replica) == 0
        await asyncio.to_thread(picker.finished, "rep_1", failed=False)
        await run_until(runner, is_final(world, batch_id))
        await runner.close()

    asyncio.run(scenario())
    batch = world.batch(batch_id)
    assert (batch.status, batch.completed, batch.failed) == ("completed", 6, 0)
    output = world.file_lines(batch.output_file_id)
    assert sorted(line["custom_id"] for line in output) == [f"r{i}" for i in range(6)]
    assert attempts(world, batch_id) == [1] * 6  # a preemption is not an attempt
    assert world.replica.counters.requests == 6 + 4  # the 4 preempted lines ran again
    content = output[0]["response"]["body"]["choices"][0]["message"]["content"]
    assert content == "".join(f"tok{i} " for i in range(10))  # rebuilt from the stream


def test_long_batch_requests_hand_a_slot_back_for_health_probes(world: BatchWorld) -> None:
    slow_streams(world)
    batch_id = world.submit([chat_line(f"r{i}") for i in range(8)])

    async def scenario() -> None:
        runner = world.runner(longest_full_hold_seconds=0.1)
        await run_until(runner, lambda: runner.preemptions >= 1)
        await run_until(runner, lambda: world.replica.counters.cancellations >= 1)
        await run_until(runner, is_final(world, batch_id))
        await runner.close()

    asyncio.run(scenario())
    batch = world.batch(batch_id)
    assert (batch.status, batch.completed) == ("completed", 8)
    output = world.file_lines(batch.output_file_id)
    assert sorted(line["custom_id"] for line in output) == [f"r{i}" for i in range(8)]
    assert attempts(world, batch_id) == [1] * 8
