"""How much memory a model needs, and which instance types can serve it at what price.

Pure functions of ``ModelFacts`` and the ``Catalog``. The numbers are estimates meant to
rank choices and to warn early, not guarantees:

- weights: parameters x bytes per parameter of the serving dtype (the file size for GGUF,
  whose quantized blocks have no simple per-parameter width);
- KV cache: 2 (K and V) x layers x KV heads x head dim x bytes per element x context
  length x concurrent sequences;
- overhead: a fixed 512 MiB for the runtime (CUDA context, llama.cpp or Python) plus 5 %
  of the weights for activations and buffers.

An instance fits when the total plus ~10 % headroom fits into its GPU memory (GPU types,
tensor parallel over the smallest power-of-two number of its GPUs that suffices) or its
RAM (CPU types).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

from regolo.server.billing.catalog import GIB, Catalog, InstanceType
from regolo.server.hub.inspect import ModelFacts

RUNTIME_OVERHEAD_BYTES = 512 * 2**20
ACTIVATION_FRACTION = 0.05
HEADROOM = 1.10
DEFAULT_KV_BYTES = 2  # fp16 KV cache, the default of vLLM, llama.cpp and transformers on GPU

BYTES_PER_PARAMETER: dict[str, float] = {
    "float64": 8,
    "float32": 4,
    "float16": 2,
    "bfloat16": 2,
    "float8_e4m3": 1,
    "float8_e5m2": 1,
    "fp8": 1,
    "int8": 1,
    "int4": 0.5,
    # GGUF quantizations: bits per weight / 8, block scales included
    "F32": 4,
    "F16": 2,
    "BF16": 2,
    "Q8_0": 1.0625,
    "Q6_K": 0.8203,
    "Q5_1": 0.75,
    "Q5_0": 0.6875,
    "Q5_K_M": 0.6875,
    "Q5_K_S": 0.6875,
    "Q4_1": 0.625,
    "Q4_0": 0.5625,
    "Q4_K_M": 0.5625,
    "Q4_K_S": 0.5625,
    "Q3_K_M": 0.4297,
    "Q2_K": 0.3281,
}


@dataclass(frozen=True, kw_only=True)
class MemoryEstimate:
    weights_bytes: int
    kv_cache_bytes: int
    overhead_bytes: int
    context_length: int
    concurrency: int
    dtype: str | None

    @property
    def total_bytes(self) -> int:
        return self.weights_bytes + self.kv_cache_bytes + self.overhead_bytes

    @property
    def required_bytes(self) -> int:
        """The total with headroom: what an instance must have free."""
        return math.ceil(self.total_bytes * HEADROOM)


@dataclass(frozen=True, kw_only=True)
class InstanceFit:
    instance_type: str
    fits: bool
    reason: str
    gpus_used: int  # 0 for CPU instances and for GPU instances that do not fit
    price_per_hour: Decimal
    price_per_month: Decimal
    currency: str
    estimated_decode_tokens_per_s: float | None


def estimate_memory(
    facts: ModelFacts,
    *,
    context_length: int | None = None,
    concurrency: int = 1,
    dtype: str | None = None,
) -> MemoryEstimate:
    """Estimate serving memory; ``dtype`` overrides the checkpoint's (safetensors only)."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    context = context_length or facts.context_length or 2048
    serving_dtype = dtype or facts.dtype
    weights = _weights_bytes(facts, serving_dtype)
    kv = _kv_cache_bytes(facts, serving_dtype) * context * concurrency
    overhead = RUNTIME_OVERHEAD_BYTES + int(weights * ACTIVATION_FRACTION)
    return MemoryEstimate(
        weights_bytes=weights,
        kv_cache_bytes=kv,
        overhead_bytes=overhead,
        context_length=context,
        concurrency=concurrency,
        dtype=serving_dtype,
    )


def recommend(
    facts: ModelFacts,
    catalog: Catalog,
    *,
    concurrency: int = 1,
    context_length: int | None = None,
) -> list[InstanceFit]:
    """Every instance type with whether the model fits, cheapest fitting first.

    ``estimated_decode_tokens_per_s`` is a single-stream upper bound: decoding is memory
    bound, each new token reads every weight once, so tokens/s is about the memory
    bandwidth of the accelerator (times the GPUs used in tensor parallel) divided by the
    bytes of weights read per token. Real servers reach perhaps 50-80 % of it.
    """
    estimate = estimate_memory(facts, context_length=context_length, concurrency=concurrency)
    fits = [_fit(facts, estimate, instance, catalog) for instance in catalog.instance_types]
    return sorted(fits, key=lambda f: (not f.fits, f.price_per_hour, f.instance_type))


def _fit(
    facts: ModelFacts, estimate: MemoryEstimate, instance: InstanceType, catalog: Catalog
) -> InstanceFit:
    gpus, reason = (
        _gpu_fit(facts, estimate, instance) if instance.is_gpu else _cpu_fit(estimate, instance)
    )
    fits = gpus > 0 if instance.is_gpu else reason.startswith("fits")
    bandwidth = instance.memory_bandwidth_gb_per_s * max(gpus, 1) * 1e9
    speed = bandwidth / estimate.weights_bytes if fits and estimate.weights_bytes else None
    return InstanceFit(
        instance_type=instance.id,
        fits=fits,
        reason=reason,
        gpus_used=gpus,
        price_per_hour=instance.price_per_hour,
        price_per_month=catalog.price_per_month(instance),
        currency=instance.currency,
        estimated_decode_tokens_per_s=round(speed, 1) if speed is not None else None,
    )


def _gpu_fit(
    facts: ModelFacts, estimate: MemoryEstimate, instance: InstanceType
) -> tuple[int, str]:
    needed = estimate.required_bytes
    per_gpu = instance.gpu_memory_gb * GIB
    count = 1
    while count <= instance.gpu_count:
        heads_split = not facts.num_attention_heads or facts.num_attention_heads % count == 0
        if heads_split and needed <= count * per_gpu:
            return count, (
                f"fits on {count} of {instance.gpu_count} GPU(s): needs {_gib(needed)}, "
                f"has {_gib(count * per_gpu)}"
            )
        count *= 2
    return 0, f"needs {_gib(needed)}, the instance has {_gib(instance.gpu_count * per_gpu)}"


def _cpu_fit(estimate: MemoryEstimate, instance: InstanceType) -> tuple[int, str]:
    needed, ram = estimate.required_bytes, instance.ram_gb * GIB
    if needed <= ram:
        return 0, f"fits in RAM: needs {_gib(needed)}, has {_gib(ram)}"
    return 0, f"needs {_gib(needed)} of RAM, the instance has {_gib(ram)}"


def _weights_bytes(facts: ModelFacts, dtype: str | None) -> int:
    if facts.format == "gguf" and (dtype is None or dtype == facts.dtype):
        return facts.size_bytes
    width = BYTES_PER_PARAMETER.get(dtype or "")
    if width is None:
        return facts.size_bytes  # unknown dtype: the checkpoint's size is the best guess
    return int(facts.parameter_count * width)


def _kv_cache_bytes(facts: ModelFacts, dtype: str | None) -> int:
    """KV bytes per token of one sequence."""
    layers, kv_heads, head_dim = facts.num_layers, facts.num_kv_heads, facts.head_dim
    if not (layers and kv_heads and head_dim):
        return 0
    width = 4 if dtype in ("float32", "F32") else DEFAULT_KV_BYTES
    return 2 * layers * kv_heads * head_dim * width


def _gib(size: int | float) -> str:
    return f"{size / GIB:.1f} GiB"
