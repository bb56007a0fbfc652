from __future__ import annotations

import pytest

from regolo.server.hub.selection import NoUsableWeights, choose_files

META = {"config.json": 600, "tokenizer.json": 2000, "README.md": 100, ".gitattributes": 10}


def test_prefers_safetensors_and_skips_pickles() -> None:
    choice = choose_files(
        {**META, "model.safetensors": 10, "pytorch_model.bin": 10, "model.pt": 1, "x.onnx": 1}
    )
    assert choice.format == "safetensors"
    assert choice.weights == ("model.safetensors",)
    assert set(choice.metadata) == {"config.json", "tokenizer.json", "README.md"}
    assert not any(name.endswith((".bin", ".pt", ".onnx")) for name in choice.files)


def test_sharded_safetensors_with_index_beat_consolidated() -> None:
    names = {
        **META,
        "model.safetensors.index.json": 1,
        "model-00001-of-00002.safetensors": 5,
        "model-00002-of-00002.safetensors": 5,
        "consolidated.safetensors": 10,
    }
    assert choose_files(names).weights == (
        "model.safetensors.index.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    )


def test_gguf_quantization_order() -> None:
    names = {
        "llama.Q2_K.gguf": 2,
        "llama.Q8_0.gguf": 8,
        "llama.Q4_1.gguf": 4,
        "llama.Q4_K_M.gguf": 4,
        "README.md": 1,
    }
    assert choose_files(names).weights == ("llama.Q4_K_M.gguf",)
    names.pop("llama.Q4_K_M.gguf")
    assert choose_files(names).weights == ("llama.Q4_1.gguf",)
    names.pop("llama.Q4_1.gguf")
    assert choose_files(names).weights == ("llama.Q8_0.gguf",)
    names.pop("llama.Q8_0.gguf")
    assert choose_files(names).weights == ("llama.Q2_K.gguf",)


def test_gguf_pattern_wins_even_over_safetensors() -> None:
    names = {"model.safetensors": 1, "m.Q4_K_M.gguf": 1, "m.Q6_K.gguf": 1}
    choice = choose_files(names, gguf_file="*q6_k*")
    assert (choice.format, choice.weights) == ("gguf", ("m.Q6_K.gguf",))
    with pytest.raises(NoUsableWeights):
        choose_files(names, gguf_file="*Q3*")


def test_split_and_projector_ggufs_are_not_candidates() -> None:
    names = {"m-00001-of-00002.gguf": 1, "m-00002-of-00002.gguf": 1, "mmproj-f16.gguf": 1}
    with pytest.raises(NoUsableWeights):
        choose_files(names)


def test_only_pickles_is_refused() -> None:
    with pytest.raises(NoUsableWeights, match="pickle"):
        choose_files({**META, "pytorch_model.bin": 10})
