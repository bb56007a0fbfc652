"""inspect_model on real files: safetensors checkpoints written here and the demo GGUF."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from tests.support.hf_mirror import (
    TINY_LLAMA_CONFIG,
    tiny_llama_shapes,
    write_safetensors,
    write_tiny_llama,
)

from regolo.server.hub.inspect import NotAModel, inspect_model
from regolo.server.hub.safetensors_meta import SafetensorsError, read_safetensors_header


def test_tiny_llama_facts(tmp_path: Path) -> None:
    params = write_tiny_llama(tmp_path)
    facts = inspect_model(tmp_path)
    assert facts.format == "safetensors"
    assert facts.task == "text-generation"
    assert facts.architecture == "LlamaForCausalLM"
    assert facts.parameter_count == params == sum(map(math.prod, tiny_llama_shapes().values()))
    assert facts.dtype == "float16"
    assert facts.context_length == TINY_LLAMA_CONFIG["max_position_embeddings"]
    assert (facts.num_layers, facts.hidden_size) == (2, 64)
    assert (facts.num_attention_heads, facts.num_kv_heads, facts.head_dim) == (4, 2, 16)
    assert facts.size_bytes == (tmp_path / "model.safetensors").stat().st_size
    assert facts.license == "apache-2.0"
    assert facts.has_chat_template


def test_sharded_checkpoint_sums_all_shards(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["MistralForCausalLM"]}))
    a = write_safetensors(tmp_path / "model-00001-of-00002.safetensors", {"a": (10, 10)}, "BF16")
    b = write_safetensors(tmp_path / "model-00002-of-00002.safetensors", {"b": (5,)}, "F32")
    facts = inspect_model(tmp_path)
    assert facts.parameter_count == a + b == 105
    assert facts.dtype == "bfloat16"
    assert not facts.has_chat_template


@pytest.mark.parametrize(
    ("config", "files", "task"),
    [
        ({"architectures": ["BertForSequenceClassification"]}, {}, "text-classification"),
        ({"architectures": ["BertModel"]}, {}, "feature-extraction"),
        ({"architectures": ["BertModel"]}, {"modules.json": "[]"}, "feature-extraction"),
        ({"architectures": ["Qwen2ForCausalLM"]}, {}, "text-generation"),
        (
            {"architectures": ["XLMRobertaModel"]},
            {"README.md": "---\npipeline_tag: sentence-similarity\n---\n"},
            "feature-extraction",
        ),
        (
            {"architectures": ["LlamaForCausalLM"]},
            {"README.md": "---\npipeline_tag: text-classification\n---\n"},
            "text-classification",
        ),
    ],
)
def test_task_detection(tmp_path: Path, config: dict, files: dict[str, str], task: str) -> None:
    (tmp_path / "config.json").write_text(json.dumps(config))
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    write_safetensors(tmp_path / "model.safetensors", {"w": (4, 4)})
    assert inspect_model(tmp_path).task == task


def test_unsafe_yaml_in_model_card_is_not_executed(tmp_path: Path) -> None:
    write_tiny_llama(tmp_path)
    (tmp_path / "README.md").write_text(
        "---\nlicense: !!python/object/apply:os.system ['false']\n---\n"
    )
    assert inspect_model(tmp_path).license is None


def test_demo_gguf_facts(demo_gguf: Path) -> None:
    facts = inspect_model(demo_gguf)
    assert facts.format == "gguf"
    assert facts.task == "text-generation"
    assert facts.architecture == "llama"
    assert 130e6 < facts.parameter_count < 140e6
    assert facts.dtype == "Q4_1"
    assert facts.context_length == 8192
    assert (facts.num_layers, facts.hidden_size, facts.num_kv_heads, facts.head_dim) == (
        30,
        576,
        3,
        64,
    )
    assert facts.size_bytes == demo_gguf.stat().st_size
    assert facts.license == "apache-2.0"
    assert facts.has_chat_template


def test_directory_with_one_gguf(tmp_path: Path, demo_gguf: Path) -> None:
    (tmp_path / "model.Q4_1.gguf").symlink_to(demo_gguf)
    assert inspect_model(tmp_path).format == "gguf"


def test_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(NotAModel):
        inspect_model(tmp_path)
    with pytest.raises(NotAModel):
        inspect_model(tmp_path / "missing")
    (tmp_path / "model.safetensors").write_bytes(b"\xff" * 16)
    with pytest.raises(NotAModel) as info:
        inspect_model(tmp_path)
    assert info.value.status_code == 400 and info.value.param == "url"


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"\x05\x00\x00\x00\x00\x00\x00\x00{}",
        b"\xff" * 8,
        b"\x02\x00\x00\x00\x00\x00\x00\x00[]",
    ],
)
def test_corrupt_safetensors(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(SafetensorsError):
        read_safetensors_header(path)
