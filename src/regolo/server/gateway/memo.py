"""A bounded dict that computes what it lacks: answers to questions clients ask again.

Every request asks what its ``Authorization`` header, path and host mean; clients ask
with the same few values over and over. Looking the answer up (``memo[key]``) runs in
C, where working it out again takes a few dozen Python steps.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(dict[K, V], Generic[K, V]):
    """``memo[key]`` is ``compute(key)``, remembered when ``keep(key)`` allows it.

    At most ``capacity`` answers are kept; a full memo starts over, so keys a client
    invents (random paths, say) cost memory only up to that bound. ``keep`` refuses
    keys too large to hold on to.
    """

    def __init__(
        self, compute: Callable[[K], V], *, capacity: int, keep: Callable[[K], bool]
    ) -> None:
        super().__init__()
        self._compute = compute
        self._capacity = capacity
        self._keep = keep

    def __missing__(self, key: K) -> V:
        value = self._compute(key)
        if self._keep(key):
            if len(self) >= self._capacity:
                self.clear()
            self[key] = value
        return value
