"""Why a resolve or a download failed, as a stable reason code, translated at the edge.

huggingface_hub, httpx2 and the OS raise many exception types; callers see one,
``DownloadFailed(reason_code, message)``, whose HTTP rendering fits the reason.

    reason_code          status  meaning
    gated                403     the repository is gated: accept its terms on the hub, use a token
    bad_token            403     the token is invalid or lacks permission
    not_found            404     no such repository (or private without a token)
    revision_not_found   404     the branch, tag or commit does not exist
    file_not_found       404     a chosen file vanished from the revision
    unsupported_format   400     no safetensors or single-file GGUF weights
    disk_full            507     not enough free space in the destination
    offline              503     HF_HUB_OFFLINE is set and the files are not cached
    network              502     the hub could not be reached
    rate_limited         429     the hub asked us to slow down
    host_refused         502     the hub redirected to a host outside the allow list (S8)
    upstream             502     any other answer from the hub
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager

import httpx2
from huggingface_hub import constants as hf_constants
from huggingface_hub import errors as hf_errors

from regolo.server.errors import RegoloError
from regolo.server.hub.safety import HostRefused

_RENDERING: dict[str, tuple[int, str]] = {
    "gated": (403, "permission_error"),
    "bad_token": (403, "permission_error"),
    "not_found": (404, "not_found_error"),
    "revision_not_found": (404, "not_found_error"),
    "file_not_found": (404, "not_found_error"),
    "unsupported_format": (400, "invalid_request_error"),
    "disk_full": (507, "server_error"),
    "offline": (503, "service_unavailable"),
    "network": (502, "upstream_error"),
    "rate_limited": (429, "rate_limit_error"),
    "host_refused": (502, "upstream_error"),
    "upstream": (502, "upstream_error"),
}
REASON_CODES = frozenset(_RENDERING)


class DownloadFailed(RegoloError):
    def __init__(self, reason_code: str, message: str) -> None:
        if reason_code not in _RENDERING:
            raise ValueError(f"unknown download failure reason {reason_code!r}")
        super().__init__(message, code=reason_code, param="url")
        self.reason_code = reason_code
        self.status_code, self.error_type = _RENDERING[reason_code]


@contextmanager
def translated_errors(repo_id: str, *, has_token: bool) -> Iterator[None]:
    """Turn foreign exceptions raised inside the block into ``DownloadFailed``."""
    try:
        yield
    except DownloadFailed:
        raise
    except Exception as exc:
        failure = translate(exc, repo_id, has_token=has_token)
        if failure is None:
            raise
        raise failure from exc


def translate(exc: BaseException, repo_id: str, *, has_token: bool) -> DownloadFailed | None:
    """The ``DownloadFailed`` for ``exc``, or None when it is not a known failure."""
    chain = _chain(exc)
    refused = next((e for e in chain if isinstance(e, HostRefused)), None)
    if refused is not None:
        return DownloadFailed("host_refused", str(refused))
    if isinstance(exc, hf_errors.GatedRepoError):
        return DownloadFailed(
            "gated",
            f"{repo_id} is gated: accept its terms on the Hugging Face hub and configure a "
            "token of an account that has access",
        )
    if isinstance(exc, hf_errors.RepositoryNotFoundError):
        hint = "" if has_token else " (if it is private, configure a Hugging Face token)"
        return DownloadFailed("not_found", f"repository {repo_id} was not found{hint}")
    if isinstance(exc, hf_errors.RevisionNotFoundError):
        return DownloadFailed("revision_not_found", f"revision not found in {repo_id}")
    if isinstance(exc, hf_errors.RemoteEntryNotFoundError):
        return DownloadFailed("file_not_found", f"a file of {repo_id} is missing on the hub")
    if isinstance(exc, hf_errors.HfHubHTTPError):
        return _http_failure(exc, repo_id)
    return _transport_failure(exc, chain)


def _http_failure(exc: hf_errors.HfHubHTTPError, repo_id: str) -> DownloadFailed:
    status = exc.response.status_code if exc.response is not None else 0
    if status in (401, 403):
        return DownloadFailed(
            "bad_token", f"the Hugging Face token is invalid or has no access to {repo_id}"
        )
    if status == 429:
        return DownloadFailed("rate_limited", "the Hugging Face hub is rate limiting requests")
    return DownloadFailed("upstream", f"the Hugging Face hub answered HTTP {status}")


def _transport_failure(exc: BaseException, chain: list[BaseException]) -> DownloadFailed | None:
    if any(isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT) for e in chain):
        return DownloadFailed("disk_full", "not enough free disk space for the model files")
    offline = hf_constants.is_offline_mode() or any(
        isinstance(e, hf_errors.OfflineModeIsEnabled) for e in chain
    )
    if offline and isinstance(exc, (hf_errors.OfflineModeIsEnabled, FileNotFoundError)):
        return DownloadFailed(
            "offline", "HF_HUB_OFFLINE is set and the model files are not in the local cache"
        )
    network = (httpx2.TransportError, hf_errors.LocalEntryNotFoundError)
    if any(isinstance(e, network) for e in chain):
        return DownloadFailed("network", "the Hugging Face hub could not be reached")
    if isinstance(exc, hf_errors.FileMetadataError):
        return DownloadFailed("upstream", "the configured endpoint does not behave like a hub")
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and its causes, outermost first (cycles cut)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not e for e in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain
