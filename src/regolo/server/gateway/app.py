"""The gateway: a raw ASGI application serving the OpenAI-compatible data plane.

The handler reads as the chain of the design: authenticate -> resolve endpoint ->
limits -> response cache -> pick deployment -> pick replica -> proxy -> compression
-> record usage. It avoids frameworks on purpose: every microsecond here is paid on
every inference call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from itertools import count
from typing import Any

import orjson

from regolo.server.errors import (
    MethodNotAllowed,
    NotFound,
    RegoloError,
    Unauthenticated,
    Unavailable,
    UpstreamError,
)
from regolo.server.gateway import resolve
from regolo.server.gateway.auth import Authenticator, bearer_token
from regolo.server.gateway.cache import ResponseCache, cache_key, is_deterministic
from regolo.server.gateway.compression import MIN_COMPRESS_BYTES, choose_encoding, compress
from regolo.server.gateway.disconnect import DisconnectWatches, uncancel_for_disconnect
from regolo.server.gateway.gc_tuning import tune_gc_for_serving
from regolo.server.gateway.limits import EndpointGate, KeyRateLimiter
from regolo.server.gateway.memo import Memo
from regolo.server.gateway.picker import ReplicaPicker, pick_deployment
from regolo.server.gateway.proxy import (
    UNREACHABLE,
    Outcome,
    count_tokens,
    is_stream,
    open_upstream,
    read_rest,
    relay_stream,
)
from regolo.server.gateway.request_body import (
    BodyLimits,
    ClientGone,
    Receive,
    check_caps,
    check_content_type,
    parse_json_object,
    read_body,
)
from regolo.server.gateway.responses import (
    JSON_TYPE,
    Headers,
    Message,
    Send,
    body_messages,
    send_error,
    send_json,
)
from regolo.server.gateway.routing_table import RouteDeployment, RouteEndpoint, RoutingTable
from regolo.server.gateway.upstream import UpstreamPool, UpstreamResponse
from regolo.server.gateway.usage import UsageBuffer
from regolo.server.specs import Principal, UsageRecord

logger = logging.getLogger(__name__)
Scope = MutableMapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class GatewayOptions:
    max_upstream_attempts: int = 3
    failure_threshold: int = 3  # consecutive failures that eject a replica
    ejection_seconds: float = 10.0
    cache_max_bytes: int = 64 * 1024 * 1024
    cache_ttl_seconds: float = 300.0
    compression_min_bytes: int = MIN_COMPRESS_BYTES
    reserved_subdomains: frozenset[str] = frozenset({"api", "www", "app", "dashboard"})


class _Call(Outcome):
    """One request as it moves down the chain, and what its relay observed (``Outcome``).

    Hashable by identity (``DisconnectWatches`` keys on it). Defaults are class
    attributes, as in ``Outcome``: a request sets ``request_id`` and ``started_at``.
    """

    request_id: bytes
    started_at: float
    principal: Principal | None = None
    endpoint: RouteEndpoint | None = None
    deployment: RouteDeployment | None = None
    status_code: int = 0  # the status the client got
    cache_hit: bool = False
    responded: bool = False  # the final body message is on its way
    queue_wait_ms: float = 0.0  # time spent waiting for a slot or a replica (scale from zero)


RequestHeaders = dict[bytes, bytes]


class Gateway:
    def __init__(
        self,
        *,
        authenticator: Authenticator,
        endpoint_domain: str | None,
        usage: UsageBuffer,
        limits: BodyLimits,
        options: GatewayOptions,
        on_no_ready_replica: Callable[[str], None] | None = None,
    ) -> None:
        self.authenticator = authenticator
        self.endpoint_domain = endpoint_domain.lower().strip(".") if endpoint_domain else None
        self.usage = usage
        self.limits = limits
        self.options = options
        self.on_no_ready_replica = on_no_ready_replica
        self.pool = UpstreamPool()
        self.picker = ReplicaPicker(
            failure_threshold=options.failure_threshold, ejection_seconds=options.ejection_seconds
        )
        self.cache = ResponseCache(
            max_bytes=options.cache_max_bytes, ttl_seconds=options.cache_ttl_seconds
        )
        self.rate_limiter = KeyRateLimiter()
        self._table = RoutingTable()
        self._gates: dict[str, EndpointGate] = {}
        self._replica_waiters: dict[str, int] = {}
        self._table_changed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._rng = random.Random()
        self._request_ids = count(1)
        self._request_prefix = b"req_" + os.urandom(4).hex().encode()
        # What a request's Authorization header and (path, host) mean, looked up in C.
        self._tokens = Memo(bearer_token, capacity=_MEMO_CAPACITY, keep=_small_header)
        self._routes = Memo(self._match_route, capacity=_MEMO_CAPACITY, keep=_small_route)
        self._watches = DisconnectWatches()

    # ---- public surface -------------------------------------------------------------

    @property
    def table(self) -> RoutingTable:
        return self._table

    def set_table(self, table: RoutingTable) -> None:
        """Swap the routing table atomically; requests waiting for a replica re-check it."""
        self._table = table
        live = {r.replica_id for e in table.endpoints for d in e.deployments for r in d.replicas}
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if _running_loop() is loop:
            self._after_swap(live)
        else:
            loop.call_soon_threadsafe(self._after_swap, live)

    def waiting(self, endpoint_id: str) -> int:
        """Requests of an endpoint waiting for a slot or for a first replica (autoscaler)."""
        gate = self._gates.get(endpoint_id)
        return (gate.queued if gate else 0) + self._replica_waiters.get(endpoint_id, 0)

    def handles(self, scope: Scope) -> bool:
        """Whether ``scope`` is for the gateway (the top-level dispatcher asks)."""
        if scope.get("type") != "http":
            return False
        route = scope[_ROUTE_KEY] = self._routes[scope["path"], _host(scope)]  # reused
        return route is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        call = _Call()
        call.request_id = b"%s%x" % (self._request_prefix, next(self._request_ids))
        call.started_at = time.perf_counter()
        try:
            await self._handle(scope, receive, send, call)
        except RegoloError as error:
            call.status_code = error.status_code
            await send_error(send, error, [(b"x-request-id", call.request_id)])
        except ClientGone:
            call.status_code = 499
        except asyncio.CancelledError:
            if not uncancel_for_disconnect():
                raise
            call.status_code = 499  # the client went away; its upstream request is gone too
        except Exception:
            logger.exception("gateway request %s failed", call.request_id.decode())
            call.status_code = 500
            if not call.responded:
                await send_error(send, RegoloError(), [(b"x-request-id", call.request_id)])
        finally:
            self._record(call)

    # ---- the chain --------------------------------------------------------------------

    async def _handle(self, scope: Scope, receive: Receive, send: Send, call: _Call) -> None:
        # dict() runs in C; a repeated header keeps its last value, as a loop would.
        headers: RequestHeaders = dict(scope["headers"])
        token = self._tokens[headers.get(b"authorization")]
        if token is None:
            raise Unauthenticated()
        answered, principal = self.authenticator.authenticate_cached(token)
        if not answered:  # only a store lookup can tell: on a thread, never on the loop
            principal = await asyncio.to_thread(self.authenticator.authenticate, token)
        if principal is None:
            raise Unauthenticated()
        call.principal = principal
        route = scope.get(_ROUTE_KEY) or self._routes[scope["path"], headers.get(b"host")]
        if route is None:
            raise NotFound("unknown route", code="unknown_url")
        if scope["method"] != route.method:
            raise MethodNotAllowed(f"use {route.method} for this route")
        if route.operation == resolve.MODELS:
            models = resolve.model_list(self._table, principal, route.endpoint_name)
            call.status_code = 200
            await send_json(send, 200, models, [(b"x-request-id", call.request_id)])
            return
        check_content_type(headers.get(b"content-type"))
        body = await read_body(receive, headers.get(b"content-length"), self.limits.max_body_bytes)
        payload = parse_json_object(body)
        check_caps(payload, self.limits)
        endpoint = call.endpoint = resolve.resolve_endpoint(
            self._table, principal, route, payload.get("model")
        )
        self.rate_limiter.admit(principal)
        gate = self._gates.get(endpoint.endpoint_id) or self._gates.setdefault(
            endpoint.endpoint_id, EndpointGate()
        )
        if not gate.try_acquire(endpoint.max_concurrency):
            queued_at = time.perf_counter()
            await gate.acquire(
                endpoint.max_concurrency, endpoint.max_queue, endpoint.queue_timeout_seconds
            )
            call.queue_wait_ms = (time.perf_counter() - queued_at) * 1000.0
        try:
            await self._forward(receive, send, call, endpoint, route, payload, body, headers)
        finally:
            gate.release()

    async def _forward(
        self,
        receive: Receive,
        send: Send,
        call: _Call,
        endpoint: RouteEndpoint,
        route: resolve.Route,
        payload: dict[str, Any],
        body: bytes,
        headers: RequestHeaders,
    ) -> None:
        """Pick deployment -> response cache -> pick replica and proxy -> compression.

        One coroutine on purpose: each level of ``await`` costs about as much as a step.
        """
        principal = call.principal
        assert principal is not None
        if not endpoint.has_ready_replica():
            endpoint = await self._wait_for_replica(call, endpoint)
        deployment = call.deployment = pick_deployment(endpoint.deployments, self._rng)
        if deployment is None:
            raise Unavailable("the endpoint has no ready replica", retry_after_seconds=5.0)
        out_headers: Headers = [(b"x-request-id", call.request_id)]
        if call.queue_wait_ms >= 1.0:
            out_headers.append((b"x-regolo-queue-wait-ms", b"%d" % call.queue_wait_ms))
        key = None
        if endpoint.enable_cache and is_deterministic(payload):
            key = cache_key(
                principal.account_id, endpoint.endpoint_id, deployment.deployment_id, payload
            )
            cached = self.cache.get(key)
            out_headers.append((b"x-regolo-cache", b"miss" if cached is None else b"hit"))
            if cached is not None:
                call.cache_hit = True
                start, answer = self._buffered_answer(
                    call, 200, cached.content_type, cached.body, headers, out_headers
                )
                await send(start)
                await send(answer)
                return
        if payload.get("model") != deployment.served_model_name:
            payload["model"] = deployment.served_model_name
            body = _dumps(payload)
        timeout = endpoint.request_timeout_seconds
        self._watches.watch(receive, call)
        response = None
        path = _UPSTREAM_PATHS[route.operation]
        try:
            try:
                response = await open_upstream(
                    self.pool,
                    self.picker,
                    deployment,
                    path,
                    body,
                    timeout,
                    self.options.max_upstream_attempts,
                    call,
                )
            except UpstreamError as error:
                if error.code != UNREACHABLE:
                    raise
                key = None  # the answer will not be the picked deployment's
                response = await self._open_elsewhere(call, payload, path, timeout, error)
            status = call.upstream_status = response.status
            if is_stream(response):
                call.status_code = status
                await relay_stream(
                    response, send, out_headers, timeout, call, lambda: _responded(call)
                )
                return
            data = response.take_complete()  # the whole answer is usually in already
            if data is None:
                data = await read_rest(response)
            count_tokens(data, call)  # (a whole answer has no time to first token)
            if key is not None and status == 200:
                self.cache.put(key, data, response.content_type)
            start, answer = self._buffered_answer(
                call, status, response.content_type, data, headers, out_headers
            )
            await send(start)
            await send(answer)
        finally:
            self._watches.done(call)
            if response is not None:
                response.close()
            if call.replica is not None:
                status = call.upstream_status
                failed = status >= 500 or status == 0 or not call.complete
                self.picker.finished(call.replica.replica_id, failed=failed)
            if principal.rate_limit_tpm:  # tokens are known once the answer is in
                tokens = call.prompt_tokens + call.completion_tokens
                self.rate_limiter.record_tokens(principal.key_id, tokens)

    async def _open_elsewhere(
        self,
        call: _Call,
        payload: dict[str, Any],
        path: bytes,
        timeout_seconds: float,
        error: UpstreamError,
    ) -> UpstreamResponse:
        """No replica of the picked deployment took the connection (R1: nothing was sent
        back yet): the endpoint's other deployments, a canary's stable one say, take it."""
        assert call.endpoint is not None and call.deployment is not None
        tried = {call.deployment.deployment_id}
        while True:
            others = [d for d in call.endpoint.deployments if d.deployment_id not in tried]
            deployment = pick_deployment(others, self._rng)
            if deployment is None:
                raise error
            tried.add(deployment.deployment_id)
            call.deployment = deployment
            payload["model"] = deployment.served_model_name
            try:
                return await open_upstream(
                    self.pool,
                    self.picker,
                    deployment,
                    path,
                    _dumps(payload),
                    timeout_seconds,
                    self.options.max_upstream_attempts,
                    call,
                )
            except UpstreamError as again:
                if again.code != UNREACHABLE:
                    raise

    def _buffered_answer(
        self,
        call: _Call,
        status: int,
        content_type: bytes,
        body: bytes,
        headers: RequestHeaders,
        out_headers: Headers,
    ) -> tuple[Message, Message]:
        """The ``http.response.start`` and body messages of a whole answer, compressed
        when the endpoint asks for it and the client accepts it."""
        out_headers.append((b"content-type", content_type or JSON_TYPE[1]))
        assert call.endpoint is not None
        if call.endpoint.enable_compression and len(body) >= self.options.compression_min_bytes:
            encoding = choose_encoding(headers.get(b"accept-encoding"))
            if encoding is not None:
                body = compress(body, encoding)
                out_headers += [(b"content-encoding", encoding), (b"vary", b"accept-encoding")]
        call.status_code = status
        call.responded = True
        return body_messages(status, out_headers, body)

    # ---- chain steps ------------------------------------------------------------------

    def _match_route(self, path_and_host: tuple[str, bytes | None]) -> resolve.Route | None:
        path, host = path_and_host
        reserved = self.options.reserved_subdomains
        host_endpoint = resolve.host_endpoint_name(host, self.endpoint_domain, reserved)
        return resolve.match_route(path, host_endpoint)

    async def _wait_for_replica(self, call: _Call, endpoint: RouteEndpoint) -> RouteEndpoint:
        """The endpoint once it has a ready replica; waits a bounded time for one (R6)."""
        waiting_since = time.perf_counter()
        try:
            endpoint = call.endpoint = await self._ready_endpoint(endpoint)
        finally:
            call.queue_wait_ms += (time.perf_counter() - waiting_since) * 1000.0
        return endpoint

    async def _ready_endpoint(self, endpoint: RouteEndpoint) -> RouteEndpoint:
        if endpoint.has_ready_replica():
            return endpoint
        endpoint_id = endpoint.endpoint_id
        waiting = self._replica_waiters.get(endpoint_id, 0)
        if waiting >= endpoint.max_queue:
            raise Unavailable(
                "the endpoint is starting; too many requests waiting", retry_after_seconds=5.0
            )
        self._request_scale_up(endpoint)
        self._replica_waiters[endpoint_id] = waiting + 1
        try:
            deadline = time.monotonic() + endpoint.queue_timeout_seconds
            while not endpoint.has_ready_replica():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise Unavailable(
                        "the endpoint has no ready replica yet", retry_after_seconds=5.0
                    )
                try:
                    await asyncio.wait_for(self._table_changed.wait(), remaining)
                except TimeoutError:
                    continue
                endpoint = self._table.by_id(endpoint_id) or _gone(endpoint)
            return endpoint
        finally:
            self._replica_waiters[endpoint_id] -= 1

    def _request_scale_up(self, endpoint: RouteEndpoint) -> None:
        for hook in (self.on_no_ready_replica, endpoint.scaling_hook):
            if hook is not None:
                try:
                    hook(endpoint.endpoint_id)
                except Exception:  # a broken hook must not fail the request
                    logger.exception("scale-from-zero hook failed for %s", endpoint.endpoint_id)

    def _after_swap(self, live_replica_ids: set[str]) -> None:
        event, self._table_changed = self._table_changed, asyncio.Event()
        event.set()
        self.picker.forget_except(live_replica_ids)

    def _record(self, call: _Call) -> None:
        endpoint, principal = call.endpoint, call.principal
        if endpoint is None or principal is None:
            return
        started_at = call.started_at
        latency_ms = (time.perf_counter() - started_at) * 1000.0
        deployment, replica, first = call.deployment, call.replica, call.first_byte_at
        self.usage.record(
            # tuple.__new__ skips the named tuple's Python-level __new__ (less than
            # half the cost); the values are in field order.
            _new_record(
                UsageRecord,
                (
                    time.time(),
                    principal.account_id,
                    principal.key_id,
                    endpoint.endpoint_id,
                    deployment.deployment_id if deployment else None,
                    deployment.version if deployment else None,
                    replica.replica_id if replica else None,
                    call.status_code,
                    latency_ms,
                    (first - started_at) * 1000.0 if call.streamed and first else None,
                    call.prompt_tokens,
                    call.completion_tokens,
                    call.cache_hit,
                    call.streamed,
                    call.complete,
                ),
            )
        )


_UPSTREAM_PATHS = {
    op: f"/v1/{op}".encode() for op in (resolve.CHAT, resolve.COMPLETIONS, resolve.EMBEDDINGS)
}


def create_gateway(
    *,
    authenticator: Authenticator,
    endpoint_domain: str | None,
    usage: UsageBuffer,
    limits: BodyLimits | None = None,
    options: GatewayOptions | None = None,
    on_no_ready_replica: Callable[[str], None] | None = None,
) -> Gateway:
    return Gateway(
        authenticator=authenticator,
        endpoint_domain=endpoint_domain,
        usage=usage,
        limits=limits or BodyLimits(),
        options=options or GatewayOptions(),
        on_no_ready_replica=on_no_ready_replica,
    )


_new_record = tuple.__new__
_ROUTE_KEY = "regolo.gateway.route"
_MEMO_CAPACITY = 1024
_MAX_MEMO_KEY_BYTES = 512  # real keys, paths and hosts are far shorter


def _small_header(value: bytes | None) -> bool:
    return value is None or len(value) <= _MAX_MEMO_KEY_BYTES


def _small_route(path_and_host: tuple[str, bytes | None]) -> bool:
    path, host = path_and_host
    return len(path) + (len(host) if host else 0) <= _MAX_MEMO_KEY_BYTES


def _dumps(payload: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(payload)
    except TypeError:  # integers past 64 bits, which only the standard parser reads
        return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _gone(endpoint: RouteEndpoint) -> RouteEndpoint:
    raise NotFound(f"The model `{endpoint.name}` does not exist", code="model_not_found")


def _host(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == b"host":
            return bytes(value)
    return None


def _responded(call: _Call) -> None:
    call.responded = True


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            tune_gc_for_serving()  # a gateway-only process: everything is loaded by now
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


__all__ = ["Gateway", "GatewayOptions", "create_gateway"]
