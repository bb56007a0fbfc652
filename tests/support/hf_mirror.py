"""A local Hugging Face hub lookalike for tests: enough of the API for huggingface_hub.

Routes (as huggingface_hub 1.x/2.x calls them):

- ``GET /api/models/{org}/{name}/revision/{rev}`` -> ``{"id", "sha", "siblings": [...]}``
  (with sizes and LFS info, as with ``?blobs=true``)
- ``HEAD|GET /{org}/{name}/resolve/{rev}/{path}`` -> the file, with ``X-Repo-Commit``,
  ``ETag``, ``X-Linked-Etag``/``X-Linked-Size`` for LFS files, ``Content-Length`` and
  ``Range`` support (206) so interrupted downloads resume.

Errors use the hub's ``X-Error-Code`` header, which huggingface_hub maps to its exception
types: ``RepoNotFound``, ``GatedRepo``, ``RevisionNotFound``, ``EntryNotFound``.
Every request is appended to ``requests`` for assertions.
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".gguf", ".bin")


@dataclass
class MirrorRepo:
    files: dict[str, bytes]
    sha: str = "0123456789abcdef0123456789abcdef01234567"
    refs: dict[str, str] = field(default_factory=lambda: {"main": ""})
    gated: bool = False  # needs a valid token, else 401 GatedRepo
    private: bool = False  # needs a valid token, else 401 RepoNotFound
    pipeline_tag: str | None = None
    redirect_lfs_to: str | None = None  # base URL that LFS GET/HEAD redirect to
    xet_cas_url: str | None = None  # advertise LFS files as Xet-stored, with this CAS host
    cut_once: set[str] = field(default_factory=set)  # files whose next full GET drops midway

    def commit_for(self, revision: str) -> str | None:
        if revision == self.sha:
            return self.sha
        target = self.refs.get(revision)
        return (target or self.sha) if target is not None else None


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    authorization: str | None
    range: str | None


class HubMirror:
    """Run with ``with HubMirror() as hub: hub.add_repo(...); hub.endpoint``."""

    def __init__(self, *, valid_tokens: tuple[str, ...] = ("hf_valid_token",)) -> None:
        self.repos: dict[str, MirrorRepo] = {}
        self.valid_tokens = valid_tokens
        self.requests: list[LoggedRequest] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_repo(self, repo_id: str, repo: MirrorRepo) -> MirrorRepo:
        self.repos[repo_id] = repo
        return repo

    def add_directory(self, repo_id: str, directory: Path, **options: object) -> MirrorRepo:
        files = {
            p.relative_to(directory).as_posix(): p.read_bytes()
            for p in sorted(directory.rglob("*"))
            if p.is_file()
        }
        return self.add_repo(repo_id, MirrorRepo(files=files, **options))  # type: ignore[arg-type]

    def __enter__(self) -> HubMirror:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def _handler_for(hub: HubMirror) -> type[BaseHTTPRequestHandler]:
    class Handler(_MirrorHandler):
        mirror = hub

    return Handler


class _MirrorHandler(BaseHTTPRequestHandler):
    mirror: HubMirror
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        return

    def do_HEAD(self) -> None:
        self._dispatch(send_body=False)

    def do_GET(self) -> None:
        self._dispatch(send_body=True)

    def _dispatch(self, *, send_body: bool) -> None:
        path = urlsplit(self.path).path
        self.mirror.requests.append(
            LoggedRequest(
                method=self.command,
                path=path,
                authorization=self.headers.get("Authorization"),
                range=self.headers.get("Range"),
            )
        )
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if len(parts) >= 6 and parts[:2] == ["api", "models"] and parts[4] == "revision":
            self._model_info("/".join(parts[2:4]), "/".join(parts[5:]))
        elif len(parts) >= 5 and parts[2] == "resolve":
            self._resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]), send_body)
        else:
            self._error(404, "RepoNotFound", "not found")

    def _access(self, repo_id: str) -> MirrorRepo | None:
        repo = self.mirror.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return None
        auth = self.headers.get("Authorization")
        token = auth.removeprefix("Bearer ") if auth else None
        if token is not None and token not in self.mirror.valid_tokens:
            self._error(401, None, "Invalid credentials in Authorization header")
            return None
        if token is None and repo.gated:
            self._error(401, "GatedRepo", "Access to this model is restricted")
            return None
        if token is None and repo.private:
            self._error(401, "RepoNotFound", "Repository not found")
            return None
        return repo

    def _model_info(self, repo_id: str, revision: str) -> None:
        repo = self._access(repo_id)
        if repo is None:
            return
        commit = repo.commit_for(revision)
        if commit is None:
            self._error(404, "RevisionNotFound", "Invalid rev id")
            return
        siblings = [_sibling(name, data) for name, data in sorted(repo.files.items())]
        body = {
            "id": repo_id,
            "modelId": repo_id,
            "sha": commit,
            "private": repo.private,
            "gated": "auto" if repo.gated else False,
            "pipeline_tag": repo.pipeline_tag,
            "siblings": siblings,
        }
        self._send(200, json.dumps(body).encode(), {"Content-Type": "application/json"}, True)

    def _resolve(self, repo_id: str, revision: str, name: str, send_body: bool) -> None:
        repo = self._access(repo_id)
        if repo is None:
            return
        commit = repo.commit_for(revision)
        if commit is None:
            self._error(404, "RevisionNotFound", "Invalid rev id")
            return
        data = repo.files.get(name)
        if data is None:
            self._error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": commit})
            return
        headers = _file_headers(name, data, commit)
        if repo.xet_cas_url and name.endswith(LFS_SUFFIXES):
            headers["X-Xet-Hash"] = hashlib.sha256(data).hexdigest()
            headers["X-Xet-Refresh-Route"] = (
                f"{repo.xet_cas_url}/api/models/{repo_id}/xet-read-token"
            )
            headers["X-Xet-Cas-Url"] = repo.xet_cas_url
        if repo.redirect_lfs_to and name.endswith(LFS_SUFFIXES):
            headers["Location"] = f"{repo.redirect_lfs_to.rstrip('/')}/{name}"
            headers["Content-Length"] = "0"
            self._send(302, b"", headers, False)
            return
        self._send_file(repo, name, data, headers, send_body)

    def _send_file(
        self, repo: MirrorRepo, name: str, data: bytes, headers: dict[str, str], send_body: bool
    ) -> None:
        start = _range_start(self.headers.get("Range"))
        status = 200
        if start is not None and 0 < start < len(data):
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            data, status = data[start:], 206
            headers["Content-Length"] = str(len(data))
        if send_body and status == 200 and name in repo.cut_once:
            repo.cut_once.discard(name)
            self._send_cut(data, headers)
            return
        self._send(status, data, headers, send_body)

    def _send_cut(self, data: bytes, headers: dict[str, str]) -> None:
        # Promise the whole file, send half, drop the connection: a network failure mid-body.
        self.send_response(200)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data[: len(data) // 2])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(2)

    def _error(
        self, status: int, code: str | None, message: str, extra: dict[str, str] | None = None
    ) -> None:
        headers = {"X-Error-Message": message, "Content-Type": "application/json", **(extra or {})}
        if code:
            headers["X-Error-Code"] = code
        self._send(status, json.dumps({"error": message}).encode(), headers, True)

    def _send(self, status: int, body: bytes, headers: dict[str, str], send_body: bool) -> None:
        self.send_response(status)
        headers.setdefault("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if send_body and self.command != "HEAD":
            self.wfile.write(body)


def _sibling(name: str, data: bytes) -> dict[str, object]:
    entry: dict[str, object] = {"rfilename": name, "size": len(data), "blobId": _git_oid(data)}
    if name.endswith(LFS_SUFFIXES):
        sha256 = hashlib.sha256(data).hexdigest()
        entry["lfs"] = {"size": len(data), "sha256": sha256, "pointerSize": 134}
    return entry


def _file_headers(name: str, data: bytes, commit: str) -> dict[str, str]:
    headers = {
        "X-Repo-Commit": commit,
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
        "Content-Length": str(len(data)),
        "ETag": f'"{_git_oid(data)}"',
    }
    if name.endswith(LFS_SUFFIXES):
        headers["X-Linked-Etag"] = f'"{hashlib.sha256(data).hexdigest()}"'
        headers["X-Linked-Size"] = str(len(data))
    return headers


def _git_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # git blob id, not security


def _range_start(header: str | None) -> int | None:
    if not header or not header.startswith("bytes="):
        return None
    first = header.removeprefix("bytes=").split(",")[0]
    start, _, _ = first.partition("-")
    return int(start) if start.isdigit() else None


class Canary:
    """A loopback TCP listener that only counts connections: S8 tests expect zero."""

    def __init__(self) -> None:
        import socket

        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._socket.accept()
            except OSError:
                continue
            self.connections += 1
            conn.close()

    def __enter__(self) -> Canary:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._socket.close()


TINY_LLAMA_CONFIG = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 256,
    "vocab_size": 128,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
    "torch_dtype": "float16",
}


def tiny_llama_shapes(config: dict[str, int] | None = None) -> dict[str, tuple[int, ...]]:
    """Tensor names and shapes of a LlamaForCausalLM with ``TINY_LLAMA_CONFIG``."""
    c = {**TINY_LLAMA_CONFIG, **(config or {})}
    hidden, inter, vocab = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    kv = hidden // c["num_attention_heads"] * c["num_key_value_heads"]
    shapes: dict[str, tuple[int, ...]] = {
        "model.embed_tokens.weight": (vocab, hidden),
        "model.norm.weight": (hidden,),
        "lm_head.weight": (vocab, hidden),
    }
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        shapes |= {
            p + "self_attn.q_proj.weight": (hidden, hidden),
            p + "self_attn.k_proj.weight": (kv, hidden),
            p + "self_attn.v_proj.weight": (kv, hidden),
            p + "self_attn.o_proj.weight": (hidden, hidden),
            p + "mlp.gate_proj.weight": (inter, hidden),
            p + "mlp.up_proj.weight": (inter, hidden),
            p + "mlp.down_proj.weight": (hidden, inter),
            p + "input_layernorm.weight": (hidden,),
            p + "post_attention_layernorm.weight": (hidden,),
        }
    return shapes


def write_safetensors(path: Path, shapes: dict[str, tuple[int, ...]], dtype: str = "F16") -> int:
    """Write a valid safetensors file of zeros; return its parameter count."""
    width = {"F16": 2, "BF16": 2, "F32": 4}[dtype]
    header: dict[str, object] = {"__metadata__": {"format": "pt"}}
    offset = 0
    total = 0
    for name, shape in shapes.items():
        count = 1
        for dim in shape:
            count *= dim
        header[name] = {
            "dtype": dtype,
            "shape": list(shape),
            "data_offsets": [offset, offset + count * width],
        }
        offset += count * width
        total += count
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as stream:
        stream.write(len(raw).to_bytes(8, "little"))
        stream.write(raw)
        stream.write(bytes(offset))
    return total


def write_tiny_llama(directory: Path) -> int:
    """A tiny Llama checkpoint (safetensors + config + tokenizer config + card)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "config.json").write_text(json.dumps(TINY_LLAMA_CONFIG))
    (directory / "generation_config.json").write_text(json.dumps({"max_new_tokens": 16}))
    (directory / "tokenizer_config.json").write_text(
        json.dumps({"chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"})
    )
    (directory / "README.md").write_text(
        "---\nlicense: apache-2.0\npipeline_tag: text-generation\n---\n# tiny llama\n"
    )
    (directory / "pytorch_model.bin").write_bytes(b"pickle files must never be downloaded")
    return write_safetensors(directory / "model.safetensors", tiny_llama_shapes())
