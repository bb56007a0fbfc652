"""Inspect a model on disk and report the facts the library, sizing and runtimes need.

Only headers and small JSON/YAML files are read; no weights are loaded and no code from
the repository runs (no ``trust_remote_code``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from regolo.server.errors import InvalidRequest
from regolo.server.hub import gguf, safetensors_meta
from regolo.server.specs import ModelFormat, ModelTask

MAX_JSON_BYTES = 16 * 1024 * 1024
MAX_README_BYTES = 1024 * 1024

_ST_DTYPES = {
    "F64": "float64",
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3",
    "F8_E5M2": "float8_e5m2",
    "I8": "int8",
    "U8": "uint8",
}
_PIPELINE_TASKS: dict[str, ModelTask] = {
    "text-generation": "text-generation",
    "text2text-generation": "text-generation",
    "image-text-to-text": "text-generation",
    "text-classification": "text-classification",
    "sentiment-analysis": "text-classification",
    "zero-shot-classification": "text-classification",
    "feature-extraction": "feature-extraction",
    "sentence-similarity": "feature-extraction",
}
_GGUF_EMBEDDING_ARCHS = frozenset(
    {"bert", "nomic-bert", "jina-bert-v2", "t5encoder", "modern-bert"}
)


class NotAModel(InvalidRequest):
    """The path holds no readable safetensors or GGUF weights (400, param "url")."""

    def __init__(self, message: str) -> None:
        super().__init__(message, param="url", code="not_a_model")


@dataclass(frozen=True, kw_only=True)
class ModelFacts:
    format: ModelFormat
    task: ModelTask
    architecture: str | None
    parameter_count: int
    dtype: str | None  # "float16", "bfloat16", ... or a GGUF quantization such as "Q4_1"
    context_length: int | None
    num_layers: int | None
    hidden_size: int | None
    num_attention_heads: int | None
    num_kv_heads: int | None
    head_dim: int | None
    size_bytes: int  # weights on disk
    license: str | None
    has_chat_template: bool


def inspect_model(path: Path) -> ModelFacts:
    """Inspect a model directory (safetensors or one GGUF) or a ``.gguf`` file.

    Raises ``NotAModel`` (400) when there are no weights or their headers are corrupt.
    """
    try:
        return _inspect(path)
    except (gguf.GGUFError, safetensors_meta.SafetensorsError) as exc:
        raise NotAModel(f"{path.name}: {exc}") from exc


def _inspect(path: Path) -> ModelFacts:
    if path.is_file() and path.suffix.lower() == ".gguf":
        return _inspect_gguf(path, readme=None)
    if not path.is_dir():
        raise NotAModel(f"{path.name}: not a directory or a .gguf file")
    shards = sorted(path.glob("*.safetensors"))
    if shards:
        return _inspect_safetensors(path, shards)
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return _inspect_gguf(ggufs[0], readme=_front_matter(path / "README.md"))
    raise NotAModel(f"{path.name}: expected safetensors weights or exactly one .gguf file")


def _inspect_safetensors(directory: Path, shards: list[Path]) -> ModelFacts:
    summary = safetensors_meta.summarize(shards)
    config = _text_config(_read_json(directory / "config.json"))
    card = _front_matter(directory / "README.md")
    architecture = _first(config.get("architectures"))
    heads = _int(config, "num_attention_heads", "n_head", "num_heads")
    hidden = _int(config, "hidden_size", "n_embd", "d_model", "dim")
    return ModelFacts(
        format="safetensors",
        task=_task_from_card(card) or _task_from_config(directory, architecture),
        architecture=architecture or _str(config.get("model_type")),
        parameter_count=summary.parameter_count,
        dtype=_ST_DTYPES.get(summary.dtype or "", (summary.dtype or "").lower() or None),
        context_length=_int(
            config, "max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"
        ),
        num_layers=_int(config, "num_hidden_layers", "n_layer", "num_layers", "n_layers"),
        hidden_size=hidden,
        num_attention_heads=heads,
        num_kv_heads=_kv_heads(config, heads),
        head_dim=_int(config, "head_dim") or (hidden // heads if hidden and heads else None),
        size_bytes=sum(shard.stat().st_size for shard in shards),
        license=_str(card.get("license")),
        has_chat_template=_has_chat_template(directory),
    )


def _inspect_gguf(path: Path, *, readme: dict[str, Any] | None) -> ModelFacts:
    header = gguf.read_gguf_header(path)
    heads = _as_int(header.arch_value("attention.head_count"))
    hidden = _as_int(header.arch_value("embedding_length"))
    card = readme or {}
    architecture = header.architecture
    task = _task_from_card(card) or (
        "feature-extraction" if architecture in _GGUF_EMBEDDING_ARCHS else "text-generation"
    )
    return ModelFacts(
        format="gguf",
        task=task,
        architecture=architecture,
        parameter_count=header.parameter_count,
        dtype=header.quantization,
        context_length=_as_int(header.arch_value("context_length")),
        num_layers=_as_int(header.arch_value("block_count")),
        hidden_size=hidden,
        num_attention_heads=heads,
        num_kv_heads=_as_int(header.arch_value("attention.head_count_kv")) or heads,
        head_dim=_as_int(header.arch_value("attention.key_length"))
        or (hidden // heads if hidden and heads else None),
        size_bytes=path.stat().st_size,
        license=_str(header.metadata.get("general.license")) or _str(card.get("license")),
        has_chat_template=isinstance(header.metadata.get("tokenizer.chat_template"), str),
    )


def _task_from_card(card: dict[str, Any]) -> ModelTask | None:
    tag = card.get("pipeline_tag")
    return _PIPELINE_TASKS.get(tag) if isinstance(tag, str) else None


def _task_from_config(directory: Path, architecture: str | None) -> ModelTask:
    if (directory / "modules.json").is_file():  # a sentence-transformers model
        return "feature-extraction"
    name = architecture or ""
    if name.endswith(("ForSequenceClassification", "ForTokenClassification")):
        return "text-classification"
    generative = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")
    if name.endswith(generative) or not name:
        return "text-generation"
    return "feature-extraction"  # bare encoders: BertModel, XLMRobertaModel, ...


def _has_chat_template(directory: Path) -> bool:
    if (directory / "chat_template.jinja").is_file() or (
        directory / "chat_template.json"
    ).is_file():
        return True
    tokenizer_config = _read_json(directory / "tokenizer_config.json")
    return bool(tokenizer_config.get("chat_template"))


def _kv_heads(config: dict[str, Any], heads: int | None) -> int | None:
    explicit = _int(config, "num_key_value_heads", "n_head_kv", "num_kv_heads")
    if explicit:
        return explicit
    return 1 if config.get("multi_query") is True else heads


def _text_config(config: dict[str, Any]) -> dict[str, Any]:
    # Multimodal configs keep the language model's numbers under "text_config".
    nested = config.get("text_config")
    if isinstance(nested, dict):
        return {**nested, "architectures": config.get("architectures")}
    return config


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file() or path.stat().st_size > MAX_JSON_BYTES:
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _front_matter(readme: Path) -> dict[str, Any]:
    """The YAML block between the leading ``---`` lines of a model card."""
    if not readme.is_file() or readme.stat().st_size > MAX_README_BYTES:
        return {}
    text = readme.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return {}
    block, found, _ = text[3:].partition("\n---")
    if not found:
        return {}
    try:
        data = yaml.safe_load(block)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _int(config: dict[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = _as_int(config.get(key))
        if value:
            return value
    return None


def _as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _first(value: object) -> str | None:
    if isinstance(value, list) and value and isinstance(value[0], str):
        return value[0]
    return None
