"""Where a model comes from: parse what a user typed into a ``ModelSource``.

Accepted:

- ``https://huggingface.co/org/name`` (also ``www.``, a trailing ``/tree/<revision>``)
- the same path on the configured ``HF_ENDPOINT`` mirror
- ``org/name``, ``org/name@revision``, ``hf://org/name``, ``hf://org/name@revision``
- an absolute path to a model directory or a ``.gguf`` file inside an allowed local root

Parsing never opens a connection: the URL only yields a repo id and a revision, and
downloads always go to the configured endpoint (RELIABILITY S8).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from regolo.server.errors import InvalidRequest
from regolo.server.hub.safety import (
    HostPolicy,
    url_origin,
    validate_repo_id,
    validate_revision,
)

SourceKind = Literal["hf", "local"]
DEFAULT_REVISION = "main"
_PARAM = "url"


@dataclass(frozen=True, kw_only=True)
class ModelSource:
    kind: SourceKind
    display_name: str
    repo_id: str | None = None
    revision: str | None = None
    local_path: Path | None = None

    @property
    def uri(self) -> str:
        """A canonical string to store: ``hf://org/name@rev`` or the resolved local path."""
        if self.kind == "hf":
            return f"hf://{self.repo_id}@{self.revision}"
        return str(self.local_path)


def parse_model_source(
    text: str, *, hf_endpoint: str, allowed_local_roots: list[Path]
) -> ModelSource:
    """Parse a model URL, repo id or local path; raise ``InvalidRequest`` (param "url").

    >>> parse_model_source(
    ...     "https://huggingface.co/meta-llama/Llama-2-7b-hf",
    ...     hf_endpoint="https://huggingface.co", allowed_local_roots=[],
    ... ).repo_id
    'meta-llama/Llama-2-7b-hf'
    """
    if not isinstance(text, str) or not text.strip():
        raise InvalidRequest("a model URL is required", param=_PARAM)
    text = text.strip()
    if "\x00" in text:
        raise InvalidRequest("the model URL contains a NUL character", param=_PARAM)
    if text.startswith(("/", "~", "file:")):
        return _local_source(text, allowed_local_roots)
    if text.startswith("hf://"):
        return _repo_source(text.removeprefix("hf://"))
    if "://" in text:
        return _url_source(text, HostPolicy.for_endpoint(hf_endpoint))
    return _repo_source(text)


def _repo_source(text: str) -> ModelSource:
    repo_id, _, revision = text.partition("@")
    return _hf(repo_id, revision or DEFAULT_REVISION)


def _url_source(url: str, policy: HostPolicy) -> ModelSource:
    origin, parts = url_origin(url, param=_PARAM)
    if not policy.is_user_url_host(origin):
        raise InvalidRequest(
            "only Hugging Face model URLs (https://huggingface.co/org/name) or the configured "
            "mirror are accepted",
            param=_PARAM,
        )
    path = parts.path
    if origin == policy.endpoint and policy.endpoint_path:
        if not path.startswith(policy.endpoint_path + "/"):
            raise InvalidRequest("the URL is not a model page of the mirror", param=_PARAM)
        path = path.removeprefix(policy.endpoint_path)
    segments = path.strip("/").split("/")
    if len(segments) == 2:
        return _hf("/".join(segments), DEFAULT_REVISION)
    if len(segments) >= 4 and segments[2] == "tree":
        # Branch names may contain "/", so everything after /tree/ is the revision.
        return _hf("/".join(segments[:2]), "/".join(segments[3:]))
    raise InvalidRequest(
        "expected a model URL like https://huggingface.co/org/name or .../tree/<revision>",
        param=_PARAM,
    )


def _hf(repo_id: str, revision: str) -> ModelSource:
    validate_repo_id(repo_id, param=_PARAM)
    validate_revision(revision, param=_PARAM)
    return ModelSource(
        kind="hf", repo_id=repo_id, revision=revision, display_name=repo_id.split("/")[1]
    )


def _local_source(text: str, allowed_roots: list[Path]) -> ModelSource:
    raw = Path(text.removeprefix("file://")).expanduser()
    # Containment is checked before existence, so the answer leaks nothing outside the roots.
    resolved = raw.resolve()
    roots = [root.resolve() for root in allowed_roots]
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        raise InvalidRequest(
            "local model paths must be inside an allowed model directory", param=_PARAM
        )
    if resolved.is_dir():
        return ModelSource(kind="local", local_path=resolved, display_name=resolved.name)
    if resolved.is_file() and resolved.suffix.lower() == ".gguf":
        return ModelSource(kind="local", local_path=resolved, display_name=resolved.stem)
    raise InvalidRequest("a local model must be an existing directory or .gguf file", param=_PARAM)
