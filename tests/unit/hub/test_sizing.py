"""Memory estimates and instance recommendations for real model configurations."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from regolo.server.billing.catalog import GIB, Catalog, load_catalog
from regolo.server.hub.inspect import ModelFacts, inspect_model
from regolo.server.hub.sizing import estimate_memory, recommend


def facts(
    *,
    params: float,
    layers: int,
    hidden: int,
    heads: int,
    kv_heads: int,
    context: int,
    dtype: str = "bfloat16",
    head_dim: int | None = None,
) -> ModelFacts:
    return ModelFacts(
        format="safetensors",
        task="text-generation",
        architecture="LlamaForCausalLM",
        parameter_count=int(params),
        dtype=dtype,
        context_length=context,
        num_layers=layers,
        hidden_size=hidden,
        num_attention_heads=heads,
        num_kv_heads=kv_heads,
        head_dim=head_dim or hidden // heads,
        size_bytes=int(params * 2),
        license=None,
        has_chat_template=True,
    )


# Values from each model's config.json on the hub.
LLAMA2_7B = facts(
    params=6.74e9, layers=32, hidden=4096, heads=32, kv_heads=32, context=4096, dtype="float16"
)
LLAMA2_13B = facts(
    params=13.0e9, layers=40, hidden=5120, heads=40, kv_heads=40, context=4096, dtype="float16"
)
LLAMA2_70B = facts(
    params=69e9, layers=80, hidden=8192, heads=64, kv_heads=8, context=4096, dtype="float16"
)
MISTRAL_7B = facts(params=7.24e9, layers=32, hidden=4096, heads=32, kv_heads=8, context=32768)
QWEN25_05B = facts(
    params=0.494e9, layers=24, hidden=896, heads=14, kv_heads=2, context=32768, head_dim=64
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def fit_of(fits: list, instance_type: str):
    return next(f for f in fits if f.instance_type == instance_type)


def test_llama2_7b_memory() -> None:
    estimate = estimate_memory(LLAMA2_7B)
    assert estimate.weights_bytes == int(6.74e9 * 2)
    # 2 x 32 layers x 32 kv heads x 128 dims x 2 bytes x 4096 tokens = 2 GiB
    assert estimate.kv_cache_bytes == 2 * GIB
    assert 15 * GIB < estimate.total_bytes < 17 * GIB
    assert estimate.context_length == 4096


def test_kv_cache_scales_with_context_and_concurrency() -> None:
    base = estimate_memory(MISTRAL_7B, context_length=4096)
    bigger = estimate_memory(MISTRAL_7B, context_length=8192, concurrency=4)
    assert bigger.kv_cache_bytes == base.kv_cache_bytes * 8
    # Grouped-query attention: 8 KV heads, a quarter of Llama-2-7B's cache per token.
    assert base.kv_cache_bytes == estimate_memory(LLAMA2_7B).kv_cache_bytes // 4
    assert estimate_memory(MISTRAL_7B).kv_cache_bytes == 4 * GIB  # full 32k context


def test_dtype_override_changes_weights() -> None:
    assert estimate_memory(LLAMA2_7B, dtype="int8").weights_bytes == int(6.74e9)
    assert estimate_memory(LLAMA2_7B, dtype="float32").weights_bytes == int(6.74e9 * 4)
    with pytest.raises(ValueError):
        estimate_memory(LLAMA2_7B, concurrency=0)


def test_llama2_7b_fits_one_a100(catalog: Catalog) -> None:
    fits = recommend(LLAMA2_7B, catalog, concurrency=1, context_length=4096)
    for name in ("a100-40gb-x1", "a100-80gb-x1"):
        fit = fit_of(fits, name)
        assert fit.fits and fit.gpus_used == 1
    seed_example = fit_of(fits, "a100-40gb-x1")
    assert seed_example.price_per_hour == Decimal("0.50")
    assert seed_example.price_per_month == Decimal("360.00")
    assert seed_example.estimated_decode_tokens_per_s is not None
    assert 50 < seed_example.estimated_decode_tokens_per_s < 200


def test_llama2_70b_needs_at_least_two_a100_80gb(catalog: Catalog) -> None:
    fits = recommend(LLAMA2_70B, catalog, concurrency=1, context_length=4096)
    assert not fit_of(fits, "a100-80gb-x1").fits
    two = fit_of(fits, "a100-80gb-x2")
    assert two.fits and two.gpus_used == 2
    assert two.price_per_hour == Decimal("2.00")
    assert two.price_per_month == Decimal("1440.00")
    assert fit_of(fits, "a100-80gb-x8").gpus_used == 2  # smallest power of two that fits
    assert not fit_of(fits, "cpu-large").fits
    cheapest = fits[0]
    assert cheapest.fits and cheapest.price_per_hour == Decimal("2.00")


def test_llama2_13b_and_qwen(catalog: Catalog) -> None:
    assert fit_of(recommend(LLAMA2_13B, catalog), "a100-40gb-x1").fits
    assert not fit_of(recommend(LLAMA2_13B, catalog), "l4-24gb-x1").fits
    assert fit_of(recommend(QWEN25_05B, catalog), "l4-24gb-x1").fits


def test_sorted_cheapest_fitting_first(catalog: Catalog) -> None:
    fits = recommend(MISTRAL_7B, catalog, concurrency=2, context_length=8192)
    fitting = [f for f in fits if f.fits]
    assert fitting and fits[: len(fitting)] == fitting
    prices = [f.price_per_hour for f in fitting]
    assert prices == sorted(prices)
    assert all(not f.fits and f.gpus_used == 0 for f in fits[len(fitting) :])
    assert all(f.reason for f in fits)


def test_demo_gguf_fits_cpu_small(catalog: Catalog, demo_gguf: Path) -> None:
    demo = inspect_model(demo_gguf)
    estimate = estimate_memory(demo)
    assert estimate.weights_bytes == demo.size_bytes
    # 2 x 30 layers x 3 kv heads x 64 dims x 2 bytes x 8192 tokens
    assert estimate.kv_cache_bytes == 2 * 30 * 3 * 64 * 2 * 8192
    fits = recommend(demo, catalog, concurrency=1, context_length=None)
    assert fits[0].instance_type == "cpu-small" and fits[0].fits
    assert fits[0].price_per_hour == Decimal("0.02")
