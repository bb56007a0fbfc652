import torch
from transformers.cache_utils import DynamicCache

from regolo.server.runtimes.transformers_server import kv_cache
from regolo.server.runtimes.transformers_server.sampling import (
    SamplingParams,
    choose_token,
    make_generator,
)


def test_temperature_zero_is_greedy() -> None:
    params = SamplingParams(max_tokens=1, temperature=0.0)
    assert make_generator(params) is None
    assert choose_token(torch.tensor([0.1, 3.0, 0.2]), params, None) == 1


def test_seeded_sampling_repeats_and_top_p_keeps_the_head() -> None:
    params = SamplingParams(max_tokens=1, temperature=1.0, seed=7)
    logits = torch.randn(50)
    first = [choose_token(logits, params, make_generator(params)) for _ in range(3)]
    assert len(set(first)) == 1
    narrow = SamplingParams(max_tokens=1, temperature=1.0, top_p=0.01, seed=1)
    assert choose_token(logits, narrow, make_generator(narrow)) == int(torch.argmax(logits))


def _cache(batch: int, length: int, fill: float) -> DynamicCache:
    cache = DynamicCache()
    states = torch.full((batch, 2, length, 4), fill)
    cache.update(states, states.clone(), 0)
    return cache


def test_append_rows_left_pads_the_shorter_batch() -> None:
    cache, mask = _cache(1, 3, 1.0), torch.ones((1, 3), dtype=torch.long)
    new, new_mask = _cache(2, 5, 2.0), torch.ones((2, 5), dtype=torch.long)
    merged = kv_cache.append_rows(cache, mask, new, new_mask)
    assert merged.tolist() == [[0, 0, 1, 1, 1], [1] * 5, [1] * 5]
    keys = cache.layers[0].keys
    assert keys.shape == (3, 2, 5, 4)
    assert float(keys[0, 0, 0, 0]) == 0.0 and float(keys[0, 0, 2, 0]) == 1.0


def test_select_rows_drops_rows_and_trims_shared_padding() -> None:
    cache, mask = _cache(2, 4, 1.0), torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    kept = kv_cache.select_rows(cache, mask, [0])
    assert kept.tolist() == [[1, 1]]
    assert cache.layers[0].keys.shape == (1, 2, 2, 4)
    assert kv_cache.is_reshapable(cache)
