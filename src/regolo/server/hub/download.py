"""Resolve a ``ModelSource`` to a pinned file list, then download the chosen files.

``resolve`` asks the hub (``GET /api/models/{repo}/revision/{rev}?blobs=true``) for the
commit sha and the file sizes, and chooses the files (``selection.choose_files``).
``download`` fetches exactly those files at that sha with ``hf_hub_download`` into a
plain directory (``local_dir`` mode): files already complete there are skipped (HEAD only),
files already in the HF cache (``HF_HUB_CACHE``) are copied instead of fetched, and
``HF_ENDPOINT``/``HF_TOKEN``/``HF_HUB_OFFLINE`` are honoured. Resuming: a transfer cut
mid-file is resumed with a ``Range`` request inside the same call (huggingface_hub retries
up to 5 times); huggingface_hub 2.x writes to a per-process temporary file and deletes it
on failure, so a *new* call after a failure restarts the interrupted file (finished files
are kept). Every connection goes through ``http_guard``.

Failures surface as ``failures.DownloadFailed(reason_code, message)``.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import HfApi, hf_hub_download

from regolo.server.hub import http_guard
from regolo.server.hub.failures import DownloadFailed, translated_errors
from regolo.server.hub.safety import (
    DEFAULT_CDN_HOSTS,
    HostPolicy,
    is_safe_repo_file_name,
    safe_join,
)
from regolo.server.hub.selection import FileChoice, NoUsableWeights, choose_files
from regolo.server.hub.sources import ModelSource
from regolo.server.specs import ModelFormat

# (bytes_done, bytes_total, files_done, files_total)
ProgressCallback = Callable[[int, int, int, int], None]

_COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
DEFAULT_TIMEOUT_SECONDS = 30.0


@dataclass(frozen=True, kw_only=True)
class RepoFile:
    name: str
    size_bytes: int | None


@dataclass(frozen=True, kw_only=True)
class ResolvedModel:
    source: ModelSource
    format: ModelFormat
    files: tuple[RepoFile, ...]  # the whole listing (unsafe names dropped)
    chosen: tuple[RepoFile, ...]  # what ``download`` fetches
    commit_sha: str | None = None  # None for local sources
    hf_endpoint: str = "https://huggingface.co"
    cdn_hosts: tuple[str, ...] = DEFAULT_CDN_HOSTS
    gated: bool = False
    pipeline_tag: str | None = None

    @property
    def total_bytes(self) -> int:
        return sum(f.size_bytes or 0 for f in self.chosen)

    @property
    def weights_file(self) -> str | None:
        """The GGUF file name when the format is GGUF."""
        if self.format != "gguf":
            return None
        return next(f.name for f in self.chosen if f.name.lower().endswith(".gguf"))


def resolve(
    source: ModelSource,
    *,
    token: str | None,
    hf_endpoint: str,
    gguf_file: str | None = None,
    cdn_hosts: Sequence[str] = DEFAULT_CDN_HOSTS,
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
) -> ResolvedModel:
    """Pin ``source`` to a commit and choose its files. No file content is downloaded.

    ``token`` None means huggingface_hub's default (``HF_TOKEN`` or the stored login).
    """
    if source.kind == "local":
        return _resolve_local(source, gguf_file)
    assert source.repo_id is not None and source.revision is not None
    http_guard.install(HostPolicy.for_endpoint(hf_endpoint, cdn_hosts=cdn_hosts))
    with translated_errors(source.repo_id, has_token=token is not None):
        info = HfApi(endpoint=hf_endpoint, token=token).model_info(
            source.repo_id, revision=source.revision, files_metadata=True, timeout=timeout_seconds
        )
    if not isinstance(info.sha, str) or not _COMMIT_SHA.fullmatch(info.sha):
        raise DownloadFailed("upstream", "the hub did not report a commit sha for the revision")
    files = tuple(
        RepoFile(name=s.rfilename, size_bytes=s.size)
        for s in info.siblings or []
        if is_safe_repo_file_name(s.rfilename)
    )
    choice = _choose(files, gguf_file)
    return ResolvedModel(
        source=source,
        format=choice.format,
        files=files,
        chosen=_pick(files, choice),
        commit_sha=info.sha,
        hf_endpoint=hf_endpoint,
        cdn_hosts=tuple(cdn_hosts),
        gated=bool(info.gated),
        pipeline_tag=info.pipeline_tag,
    )


def download(
    resolved: ResolvedModel,
    dest_dir: Path,
    progress: ProgressCallback | None = None,
    *,
    token: str | None = None,
) -> Path:
    """Download the chosen files into ``dest_dir``; return the model path to serve.

    The result is ``dest_dir`` for safetensors and the ``.gguf`` file inside it for GGUF;
    a local source is returned as it is, without copying. ``progress`` is called with
    ``(bytes_done, bytes_total, files_done, files_total)``; an exception it raises aborts
    the download (finished files stay and are skipped next time).
    """
    source = resolved.source
    if source.kind == "local":
        assert source.local_path is not None
        weights = resolved.weights_file
        if source.local_path.is_dir() and weights:
            return safe_join(source.local_path, weights, param="file")
        return source.local_path
    assert source.repo_id is not None and resolved.commit_sha is not None
    http_guard.install(HostPolicy.for_endpoint(resolved.hf_endpoint, cdn_hosts=resolved.cdn_hosts))
    dest_dir.mkdir(parents=True, exist_ok=True)
    targets = [safe_join(dest_dir, f.name, param="file") for f in resolved.chosen]
    _check_free_space(dest_dir, resolved, targets)
    tracker = _Tracker(resolved.total_bytes, len(resolved.chosen), progress)
    with translated_errors(source.repo_id, has_token=token is not None):
        for repo_file in resolved.chosen:
            hf_hub_download(
                source.repo_id,
                repo_file.name,
                revision=resolved.commit_sha,
                local_dir=dest_dir,
                endpoint=resolved.hf_endpoint,
                token=token,
                tqdm_class=tracker.bar_class(),  # type: ignore[arg-type]
            )
            tracker.file_done(repo_file.size_bytes or 0)
    weights = resolved.weights_file
    return safe_join(dest_dir, weights, param="file") if weights else dest_dir.resolve()


class _Tracker:
    """Adds up byte progress over files; bars are the objects huggingface_hub updates."""

    def __init__(self, bytes_total: int, files_total: int, callback: ProgressCallback | None):
        self.bytes_total = bytes_total
        self.files_total = files_total
        self.callback = callback
        self.completed_bytes = 0  # of finished files, exact
        self.current_bytes = 0  # of the file in flight, as reported
        self.files_done = 0

    def add(self, count: int) -> None:
        self.current_bytes += count
        self._report()

    def file_done(self, size_bytes: int) -> None:
        self.completed_bytes += size_bytes
        self.current_bytes = 0
        self.files_done += 1
        self._report()

    def _report(self) -> None:
        if self.callback is not None:
            done = min(self.completed_bytes + self.current_bytes, self.bytes_total)
            self.callback(done, self.bytes_total, self.files_done, self.files_total)

    def bar_class(self) -> type:
        tracker = self

        class _Bar:
            # huggingface_hub builds a bar per file with tqdm's keyword arguments.
            def __init__(self, *args: object, initial: int = 0, **kwargs: object) -> None:
                tracker.current_bytes = 0
                if initial:
                    tracker.add(initial)  # bytes already on disk from an earlier attempt

            def __enter__(self) -> _Bar:
                return self

            def __exit__(self, *exc: object) -> None:
                return None

            def update(self, count: int | float = 1) -> None:
                tracker.add(int(count))

            def close(self) -> None:
                return None

        return _Bar


def _choose(files: tuple[RepoFile, ...], gguf_file: str | None) -> FileChoice:
    try:
        return choose_files({f.name: f.size_bytes for f in files}, gguf_file=gguf_file)
    except NoUsableWeights as exc:
        raise DownloadFailed("unsupported_format", str(exc)) from None


def _pick(files: tuple[RepoFile, ...], choice: FileChoice) -> tuple[RepoFile, ...]:
    by_name = {f.name: f for f in files}
    return tuple(by_name[name] for name in choice.files)


def _resolve_local(source: ModelSource, gguf_file: str | None) -> ResolvedModel:
    root = source.local_path
    assert root is not None
    if root.is_file():
        files: tuple[RepoFile, ...] = (RepoFile(name=root.name, size_bytes=root.stat().st_size),)
    else:
        files = tuple(
            RepoFile(name=p.relative_to(root).as_posix(), size_bytes=p.stat().st_size)
            for p in sorted(root.rglob("*"))
            if _is_model_file(root, p)
        )
    choice = _choose(files, gguf_file)
    return ResolvedModel(
        source=source, format=choice.format, files=files, chosen=_pick(files, choice)
    )


def _is_model_file(root: Path, path: Path) -> bool:
    # A symlink may point anywhere; only files that really live under the root count.
    name = path.relative_to(root).as_posix()
    inside = path.resolve().is_relative_to(root.resolve())
    return path.is_file() and inside and is_safe_repo_file_name(name)


def _check_free_space(dest_dir: Path, resolved: ResolvedModel, targets: list[Path]) -> None:
    present = sum(p.stat().st_size for p in targets if p.is_file())
    needed = resolved.total_bytes - present
    free = shutil.disk_usage(dest_dir).free
    if needed > free:
        raise DownloadFailed(
            "disk_full",
            f"the model needs {needed} more bytes but only {free} are free in the model store",
        )
