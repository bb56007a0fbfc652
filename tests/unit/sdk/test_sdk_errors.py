import httpx
import pytest

from regolo import errors


def _response(
    status: int, body: object = None, headers: dict[str, str] | None = None
) -> httpx.Response:
    request = httpx.Request("GET", "http://regolo.test/v1/x")
    if body is None:
        return httpx.Response(
            status, text="<html>bad gateway</html>", headers=headers, request=request
        )
    return httpx.Response(status, json=body, headers=headers, request=request)


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, errors.BadRequestError),
        (401, errors.AuthenticationError),
        (403, errors.PermissionDeniedError),
        (404, errors.NotFoundError),
        (409, errors.ConflictError),
        (413, errors.BadRequestError),
        (415, errors.BadRequestError),
        (422, errors.BadRequestError),
        (429, errors.RateLimitError),
        (500, errors.ServerError),
        (502, errors.ServerError),
        (504, errors.ServerError),
        (405, errors.RegoloError),
    ],
)
def test_status_maps_to_class(status: int, cls: type[errors.RegoloError]) -> None:
    body = {"error": {"message": "m", "type": "t", "param": "p", "code": "c"}}
    error = errors.error_from_response(_response(status, body, {"x-request-id": "req_1"}))
    assert type(error) is cls
    assert (error.status_code, error.message, error.type, error.param, error.code) == (
        status,
        "m",
        "t",
        "p",
        "c",
    )
    assert error.request_id == "req_1"
    assert "req_1" in str(error) and str(status) in str(error)


def test_rate_limit_carries_retry_after() -> None:
    body = {"error": {"message": "slow down", "type": "rate_limit_error"}}
    error = errors.error_from_response(_response(429, body, {"retry-after": "3"}))
    assert isinstance(error, errors.RateLimitError)
    assert error.retry_after == 3.0


def test_non_json_body_still_gives_a_typed_error() -> None:
    error = errors.error_from_response(_response(502))
    assert isinstance(error, errors.ServerError)
    assert "502" in error.message and "bad gateway" in error.message


def test_error_event_in_stream() -> None:
    error = errors.error_from_event(
        {"error": {"message": "replica died", "type": "upstream_error"}}
    )
    assert isinstance(error, errors.ServerError)
    assert error.message == "replica died" and error.status_code is None
