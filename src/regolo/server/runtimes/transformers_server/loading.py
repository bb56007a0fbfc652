"""Loading a model and its tokenizer from a safetensors directory or a GGUF file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModel,
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    PreTrainedTokenizerBase,
)

from regolo.server.runtimes.transformers_server.config import ServerConfig, Task

_MODEL_CLASSES: dict[Task, Any] = {
    "text-generation": AutoModelForCausalLM,
    "text-classification": AutoModelForSequenceClassification,
    "feature-extraction": AutoModel,
}
_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class LoadedModel:
    model: Any  # a transformers PreTrainedModel in eval mode
    tokenizer: PreTrainedTokenizerBase
    device: torch.device
    context_length: int


def resolve_source(model_path: str) -> tuple[str, dict[str, str]]:
    """The directory to load from and the extra ``from_pretrained`` arguments (GGUF file)."""
    path = Path(model_path)
    if path.suffix.lower() == ".gguf":
        return str(path.parent), {"gguf_file": path.name}
    return str(path), {}


def resolve_dtype(name: str, device: str) -> torch.dtype:
    # GGUF weights are dequantized; float32 is the only fast and safe choice on CPU.
    if name == "auto":
        return torch.float16 if device == "cuda" else torch.float32
    return _DTYPES[name]


def load(config: ServerConfig) -> LoadedModel:
    source, extra = resolve_source(config.model)
    common = {"trust_remote_code": False, "local_files_only": True, **extra}
    tokenizer = AutoTokenizer.from_pretrained(source, **common)
    model_class = _MODEL_CLASSES[config.task]
    model = model_class.from_pretrained(
        source, dtype=resolve_dtype(config.dtype, config.device), **common
    )
    device = torch.device(config.device)
    model = model.to(device).eval()
    if tokenizer.pad_token_id is None:
        # Padding positions are masked out, so any id works; EOS is the usual choice.
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    return LoadedModel(model, tokenizer, device, _context_length(model, tokenizer))


def _context_length(model: Any, tokenizer: PreTrainedTokenizerBase) -> int:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else None
    length = getattr(config or model.config, "max_position_embeddings", None)
    if isinstance(length, int) and length > 0:
        return length
    limit = getattr(tokenizer, "model_max_length", 2048)
    return limit if isinstance(limit, int) and limit < 10**7 else 2048
