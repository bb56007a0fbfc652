"""Which gateway route a request is for, and which endpoint it may reach.

Three URL shapes lead to the same operations: ``/v1/<op>`` (and the seed's
``/custom-model/v1/chat/completions/``) name the endpoint in the ``model`` field;
``/endpoints/<name>/v1/<op>`` and the host ``<name>.<domain>`` name it in the URL.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from regolo.server.errors import InvalidRequest, NotFound
from regolo.server.gateway.routing_table import RouteEndpoint, RoutingTable
from regolo.server.specs import Principal

CHAT = "chat/completions"
COMPLETIONS = "completions"
EMBEDDINGS = "embeddings"
MODELS = "models"
_POST_OPS = frozenset({CHAT, COMPLETIONS, EMBEDDINGS})
_OPS = {f"/v1/{op}": op for op in (CHAT, COMPLETIONS, EMBEDDINGS, MODELS)}
_OPS["/custom-model/v1/chat/completions"] = CHAT
_ENDPOINTS_PREFIX = "/endpoints/"


@dataclass(frozen=True, slots=True)
class Route:
    operation: str  # one of CHAT, COMPLETIONS, EMBEDDINGS, MODELS
    endpoint_name: str | None  # named by the URL (path or host), else None
    method: str = field(init=False)  # the HTTP method it takes: read on every request

    def __post_init__(self) -> None:
        object.__setattr__(self, "method", "POST" if self.operation in _POST_OPS else "GET")


# The routes of /v1/<op> on the API's own host: built once, not on every request (a
# frozen dataclass costs more to build than the rest of the match).
_PLAIN_ROUTES = {op: Route(op, None) for op in set(_OPS.values())}


def match_route(path: str, host_endpoint: str | None) -> Route | None:
    """The route for ``path`` (on a host naming ``host_endpoint``), or ``None``."""
    if len(path) > 1 and path[-1] == "/":
        path = path[:-1]
    operation = _OPS.get(path)
    if operation is not None:
        if host_endpoint is None:
            return _PLAIN_ROUTES[operation]
        return Route(operation, host_endpoint)
    if host_endpoint is None and path.startswith(_ENDPOINTS_PREFIX):
        name, _, rest = path[len(_ENDPOINTS_PREFIX) :].partition("/")
        operation = _OPS.get("/" + rest)
        if name and operation is not None and not rest.startswith("custom-model"):
            return Route(operation, name)
    return None


def host_endpoint_name(
    host: bytes | None, domain: str | None, reserved: frozenset[str]
) -> str | None:
    """``sentiment-api`` for the host ``sentiment-api.<domain>[:port]``, else ``None``."""
    if not host or not domain:
        return None
    name, dot, rest = host.decode("latin-1").lower().partition(".")
    if not dot or rest.partition(":")[0] != domain or name in reserved:
        return None
    return name


def may_call(principal: Principal, endpoint: RouteEndpoint) -> bool:
    if endpoint.account_id != principal.account_id or not principal.can_call(endpoint.name):
        return False
    return endpoint.allowed_key_ids is None or principal.key_id in endpoint.allowed_key_ids


_MAX_RESOLVED = 4096


def resolve_endpoint(
    table: RoutingTable, principal: Principal, route: Route, model: object
) -> RouteEndpoint:
    """The endpoint a request reaches; an unknown and a forbidden one look the same (S5).

    Answers are remembered on the table for the very ``Principal`` that asked: the
    authenticator hands out a new one whenever it checks the key against the store
    again, so a change of scopes is never answered from memory.
    """
    name = route.endpoint_name
    asked = (principal.key_id, name, model if model.__class__ is str else None)
    remembered = table.resolved.get(asked)  # type: ignore[arg-type]
    if remembered is not None and remembered[0] is principal:
        return remembered[1]
    endpoint = _resolve(table, principal, route, model)
    if len(table.resolved) >= _MAX_RESOLVED:
        table.resolved.clear()
    table.resolved[asked] = (principal, endpoint)  # type: ignore[index]
    return endpoint


def _resolve(
    table: RoutingTable, principal: Principal, route: Route, model: object
) -> RouteEndpoint:
    if route.endpoint_name is not None:
        endpoint = table.by_name(principal.account_id, route.endpoint_name)
        shown = route.endpoint_name
    elif isinstance(model, str) and model:
        endpoint = table.by_model(principal.account_id, model)
        shown = model
    else:
        raise InvalidRequest("you must provide a model parameter", param="model")
    if endpoint is None or not may_call(principal, endpoint):
        raise NotFound(
            f"The model `{shown[:200]}` does not exist or you do not have access to it.",
            param="model",
            code="model_not_found",
        )
    return endpoint


def model_list(table: RoutingTable, principal: Principal, only: str | None) -> dict[str, object]:
    """OpenAI's list shape: each callable endpoint under its name and its model's name."""
    ids: dict[str, None] = {}
    for endpoint in table.of_account(principal.account_id):
        if (only is None or endpoint.name == only) and may_call(principal, endpoint):
            ids[endpoint.name] = None
            ids[endpoint.model_name] = None
    if only is not None and not ids:
        raise NotFound(f"The model `{only[:200]}` does not exist", code="model_not_found")
    data = [{"id": i, "object": "model", "created": 0, "owned_by": "regolo"} for i in ids]
    return {"object": "list", "data": data}
