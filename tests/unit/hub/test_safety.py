"""S8/S9 validators: examples from the threat table plus property tests."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from regolo.server.errors import InvalidRequest
from regolo.server.hub.safety import (
    HostPolicy,
    HostRefused,
    check_connect_url,
    is_ip_literal,
    is_safe_repo_file_name,
    safe_join,
    validate_repo_file_name,
    validate_repo_id,
    validate_revision,
    validate_slug,
)

TRAVERSALS = [
    "../etc/passwd",
    "a/../../b",
    "..",
    ".",
    "/etc/passwd",
    "..\\windows",
    "a\\b",
    "%2e%2e/x",
    "%252e%252e/x",
    "a/%2F/b",
    "nul\x00byte",
    "line\nbreak",
    "a//b",
    "",
    "~/.ssh/id_rsa",
    "C:/windows",
    "a/",
]


@pytest.mark.parametrize("name", TRAVERSALS)
def test_repo_file_names_refuse_traversal(name: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_repo_file_name(name)
    assert info.value.status_code == 400


@pytest.mark.parametrize(
    "name", ["model.safetensors", "1_Pooling/config.json", "onnx/model.onnx", "a b.txt"]
)
def test_repo_file_names_accept_real_names(name: str) -> None:
    assert validate_repo_file_name(name) == name


@pytest.mark.parametrize(
    "repo_id",
    ["meta-llama/Llama-2-7b-hf", "Qwen/Qwen2.5-0.5B-Instruct", "TheBloke/Llama-2-7B-GGUF", "a/b"],
)
def test_repo_ids_accept_hub_ids(repo_id: str) -> None:
    assert validate_repo_id(repo_id) == repo_id


@pytest.mark.parametrize(
    "repo_id",
    [
        "noslash",
        "a/b/c",
        "../b",
        "a/..",
        "a/b..c",
        "-a/b",
        "a/b c",
        "a/b%2e",
        "a--b/c",
        "x" * 97 + "/b",
        "a/b.git",
        "a/\x00",
        "",
    ],
)
def test_repo_ids_refuse_malformed(repo_id: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_repo_id(repo_id)
    assert info.value.param == "url"


@pytest.mark.parametrize("revision", ["main", "v1.0", "refs/pr/1", "a" * 40, "release-2024_01"])
def test_revisions_accept_branches_tags_and_shas(revision: str) -> None:
    assert validate_revision(revision) == revision


@pytest.mark.parametrize(
    "revision", ["../main", "/main", "main/", "a..b", "a\x00", "a b", "x" * 256, "%2e%2e", "a//b"]
)
def test_revisions_refuse_traversal(revision: str) -> None:
    with pytest.raises(InvalidRequest):
        validate_revision(revision)


@pytest.mark.parametrize("value", ["sentiment-classifier", "1.0", "v1_1", "Llama-2-7b"])
def test_slugs_accept_names_and_versions(value: str) -> None:
    assert validate_slug(value, param="version") == value


@pytest.mark.parametrize("value", ["", "..", "a/b", "../x", ".hidden", "a..b", "x" * 65, "a\x00"])
def test_slugs_refuse_path_syntax(value: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        validate_slug(value, param="name")
    assert info.value.param == "name"


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "0177.0.0.1",
        "2130706433",
        "0x7f000001",
        "0x7f.0.0.1",
        "127.1",
        "169.254.169.254",
        "[::1]",
        "[::ffff:7f00:1]",
        "::ffff:127.0.0.1",
        "10.0.0.1.",
    ],
)
def test_ip_literals_in_any_encoding(host: str) -> None:
    assert is_ip_literal(host)


@pytest.mark.parametrize("host", ["huggingface.co", "cdn-lfs.hf.co", "localhost", "a1.example"])
def test_names_are_not_ip_literals(host: str) -> None:
    assert not is_ip_literal(host)


def test_connect_policy_allows_hub_cdn_and_exact_mirror() -> None:
    policy = HostPolicy.for_endpoint("http://127.0.0.1:8080")
    check_connect_url("http://127.0.0.1:8080/api/models/a/b", policy)
    check_connect_url("https://huggingface.co/a/b/resolve/main/x", policy)
    check_connect_url("https://cdn-lfs.hf.co/repos/x?sig=1", policy)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8081/x",  # same host, other port
        "https://127.0.0.1:8080/x",  # other scheme
        "http://2130706433:8080/x",
        "http://0x7f000001:8080/x",
        "http://[::ffff:7f00:1]:8080/x",
        "http://169.254.169.254/latest/meta-data",
        "http://huggingface.co/a/b",  # plain http to the hub
        "https://huggingface.co:8443/a/b",
        "https://huggingface.co@evil.example/a/b",
        "https://evil.example/a/b",
        "https://huggingface.co.evil.example/a/b",
        "https://cdn-lfs.hf.co:444/x",
        "file:///etc/passwd",
        "gopher://127.0.0.1:8080/",
        "http://127.0.0.1:99999/",
    ],
)
def test_connect_policy_refuses_everything_else(url: str) -> None:
    with pytest.raises(HostRefused):
        check_connect_url(url, HostPolicy.for_endpoint("http://127.0.0.1:8080"))


def test_cdn_allow_list_is_a_setting() -> None:
    policy = HostPolicy.for_endpoint("https://huggingface.co", cdn_hosts=["cdn.example"])
    check_connect_url("https://cdn.example/blob", policy)
    with pytest.raises(HostRefused):
        check_connect_url("https://cdn-lfs.hf.co/blob", policy)


def _tree_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        digest.update(str(path).encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


_PARTS = st.lists(
    st.one_of(
        st.sampled_from(
            ["..", ".", "", "/", "\\", "%2e%2e", "%252e", "\x00", "~", "/etc", "a", "b"]
        ),
        st.text(min_size=1, max_size=12),
    ),
    min_size=1,
    max_size=5,
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(parts=_PARTS)
def test_safe_join_never_leaves_root(tmp_path: Path, parts: list[str]) -> None:
    root = tmp_path / "sandbox"
    outside = tmp_path / "outside"
    root.mkdir(exist_ok=True)
    outside.mkdir(exist_ok=True)
    (outside / "secret").write_text("keep")
    link = root / "escape"
    if not link.is_symlink():
        os.symlink(outside, link)
    before = _tree_digest(outside)
    try:
        joined = safe_join(root, *parts)
    except InvalidRequest:
        pass
    else:
        assert joined.is_relative_to(root.resolve())
    assert _tree_digest(outside) == before


def test_safe_join_refuses_symlink_escape(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(tmp_path, root / "up")
    with pytest.raises(InvalidRequest):
        safe_join(root, "up", "x")
    assert safe_join(root, "model", "1.0") == root.resolve() / "model" / "1.0"


@settings(max_examples=300, deadline=None)
@given(name=st.text(max_size=40))
def test_accepted_file_names_are_plain_relative_paths(name: str) -> None:
    if is_safe_repo_file_name(name):
        parts = name.split("/")
        assert ".." not in parts and "." not in parts and "" not in parts
        assert "\\" not in name and "\x00" not in name and not name.startswith("/")
        assert not re.search(r"%[0-9A-Fa-f]{2}", name)


@settings(max_examples=300, deadline=None)
@given(value=st.text(max_size=80))
def test_accepted_slugs_are_single_safe_components(value: str) -> None:
    try:
        validate_slug(value, param="name")
    except InvalidRequest:
        return
    assert "/" not in value and ".." not in value and value.isascii() and value[0].isalnum()
