"""Choose which files of a repository to download: metadata plus weights in ONE format.

Safetensors are preferred; otherwise a single GGUF file, picked by an explicit pattern
or by the quantization order ``Q4_K_M``, ``Q4_1``, ``Q8_0`` (then the smallest file).
Pickle formats (``.bin``, ``.pt``, ``.pth``, ``.ckpt``, ``.pkl``) are never chosen:
loading them can run code (RELIABILITY S10).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass

from regolo.server.specs import ModelFormat

METADATA_FILES = frozenset(
    {
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "tokenizer.model",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.json",
        "vocab.txt",
        "merges.txt",
        "spiece.model",
        "sentencepiece.bpe.model",
        "chat_template.jinja",
        "chat_template.json",
        "preprocessor_config.json",
        "modules.json",
        "sentence_bert_config.json",
        "config_sentence_transformers.json",
        "1_Pooling/config.json",
        "README.md",
    }
)
GGUF_PREFERENCE = ("Q4_K_M", "Q4_1", "Q8_0")
_SHARD = re.compile(r"model-\d{5}-of-\d{5}\.safetensors")
_SPLIT_GGUF = re.compile(r"-\d{5}-of-\d{5}\.gguf$", re.IGNORECASE)


class NoUsableWeights(ValueError):
    """The repository has no safetensors or single-file GGUF weights to serve."""


@dataclass(frozen=True, kw_only=True)
class FileChoice:
    format: ModelFormat
    weights: tuple[str, ...]
    metadata: tuple[str, ...]

    @property
    def files(self) -> tuple[str, ...]:
        return self.metadata + self.weights


def choose_files(sizes: Mapping[str, int | None], *, gguf_file: str | None = None) -> FileChoice:
    """Pick the files to download from ``sizes`` (repo file name -> size in bytes)."""
    names = sorted(sizes)
    metadata = tuple(name for name in names if name in METADATA_FILES)
    safetensors = _safetensors_weights(names)
    if safetensors and gguf_file is None:
        return FileChoice(format="safetensors", weights=safetensors, metadata=metadata)
    chosen = _gguf_weight(names, sizes, gguf_file)
    return FileChoice(format="gguf", weights=(chosen,), metadata=metadata)


def _safetensors_weights(names: list[str]) -> tuple[str, ...]:
    top_level = [name for name in names if "/" not in name and name.endswith(".safetensors")]
    shards = tuple(name for name in top_level if _SHARD.fullmatch(name))
    if shards and "model.safetensors.index.json" in names:
        return ("model.safetensors.index.json", *shards)
    if "model.safetensors" in top_level:
        return ("model.safetensors",)
    return tuple(top_level)


def _gguf_weight(names: list[str], sizes: Mapping[str, int | None], pattern: str | None) -> str:
    candidates = [
        name
        for name in names
        if name.lower().endswith(".gguf")
        and not _SPLIT_GGUF.search(name)
        and "mmproj" not in name.lower()
    ]
    if pattern is not None:
        matches = [n for n in candidates if fnmatch.fnmatch(n.lower(), pattern.lower())]
        if not matches:
            raise NoUsableWeights(f"no GGUF file in the repository matches {pattern!r}")
        candidates = matches
    if not candidates:
        raise NoUsableWeights(
            "the repository has no safetensors or single-file GGUF weights "
            "(pickle formats such as .bin and .pt are not loaded for safety)"
        )
    for quantization in GGUF_PREFERENCE:
        for name in candidates:
            if quantization.lower() in name.lower():
                return name
    return min(candidates, key=lambda n: (sizes.get(n) or 0, n))
