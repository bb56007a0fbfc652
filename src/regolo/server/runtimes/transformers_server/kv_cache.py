"""Reshaping a batch's KV cache between decode steps: drop finished rows, add new ones.

Rows are left-padded: every row's newest token sits in the last column, so one decode
step appends one column for the whole batch. Padded columns are masked out by the 2-D
attention mask kept beside the cache.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import DynamicLayer


def is_reshapable(cache: Any) -> bool:
    """Only plain dynamic layers can be sliced and padded; sliding-window ones cannot."""
    layers = getattr(cache, "layers", None) or []
    return bool(layers) and all(type(layer) is DynamicLayer for layer in layers)


def select_rows(cache: Any, mask: torch.Tensor, rows: list[int]) -> torch.Tensor:
    """Keep ``rows`` (batch indices) in the cache; returns the matching mask."""
    index = torch.tensor(rows, dtype=torch.long, device=mask.device)
    for layer in cache.layers:
        if layer.is_initialized:
            layer.keys = layer.keys.index_select(0, index)
            layer.values = layer.values.index_select(0, index)
    return trim_padding(cache, mask.index_select(0, index))


def trim_padding(cache: Any, mask: torch.Tensor) -> torch.Tensor:
    """Drop leading columns that are padding in every row (left after long rows finished)."""
    used = mask.any(dim=0).nonzero()
    first = int(used[0]) if used.numel() else mask.shape[1]
    if first == 0:
        return mask
    for layer in cache.layers:
        if layer.is_initialized:
            layer.keys = layer.keys[:, :, first:, :]
            layer.values = layer.values[:, :, first:, :]
    return mask[:, first:]


def append_rows(
    cache: Any, mask: torch.Tensor, new_cache: Any, new_mask: torch.Tensor
) -> torch.Tensor:
    """Concatenate ``new_cache`` below ``cache`` (in place), left-padding the shorter one."""
    width = max(mask.shape[1], new_mask.shape[1])
    for layer, new_layer in zip(cache.layers, new_cache.layers, strict=True):
        layer.keys = torch.cat([_pad_left(layer.keys, width), _pad_left(new_layer.keys, width)])
        layer.values = torch.cat(
            [_pad_left(layer.values, width), _pad_left(new_layer.values, width)]
        )
    return torch.cat([_pad_mask_left(mask, width), _pad_mask_left(new_mask, width)])


def _pad_left(states: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - states.shape[2]
    if missing == 0:
        return states
    batch, heads, _, dim = states.shape
    pad = states.new_zeros((batch, heads, missing, dim))
    return torch.cat([pad, states], dim=2)


def _pad_mask_left(mask: torch.Tensor, width: int) -> torch.Tensor:
    missing = width - mask.shape[1]
    if missing == 0:
        return mask
    return torch.cat([mask.new_zeros((mask.shape[0], missing)), mask], dim=1)
