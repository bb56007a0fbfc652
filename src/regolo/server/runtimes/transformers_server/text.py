"""Turning generated token ids into streamed text: stop strings and incomplete characters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

REPLACEMENT_CHAR = "\ufffd"  # what a tokenizer decodes half of a multi-byte character to


def find_stop(text: str, stops: tuple[str, ...]) -> int | None:
    """The index where the earliest stop string starts, or None."""
    hits = [index for index in (text.find(stop) for stop in stops if stop) if index >= 0]
    return min(hits) if hits else None


def held_back_length(text: str, stops: tuple[str, ...]) -> int:
    """How many trailing characters might still become a stop string or a whole character."""
    longest = 0
    for stop in stops:
        for size in range(min(len(stop) - 1, len(text)), 0, -1):
            if text.endswith(stop[:size]):
                longest = max(longest, size)
                break
    incomplete = len(text) - len(text.rstrip(REPLACEMENT_CHAR))
    return max(longest, incomplete)


@dataclass
class TextAssembler:
    """Decodes a growing list of ids and hands out only the text that can no longer change."""

    tokenizer: Any
    stops: tuple[str, ...] = ()
    token_ids: list[int] = field(default_factory=list)
    emitted: int = 0  # characters already handed out
    stopped: bool = False

    def add(self, token_id: int) -> str:
        self.token_ids.append(token_id)
        text = self.tokenizer.decode(self.token_ids, skip_special_tokens=True)
        stop_at = find_stop(text, self.stops)
        if stop_at is not None:
            self.stopped = True
            return self._emit_up_to(text, stop_at)
        return self._emit_up_to(text, len(text) - held_back_length(text, self.stops))

    def flush(self) -> str:
        """The rest of the text once generation ended for a reason other than a stop string."""
        if self.stopped:
            return ""
        text = self.tokenizer.decode(self.token_ids, skip_special_tokens=True)
        return self._emit_up_to(text, len(text))

    def _emit_up_to(self, text: str, end: int) -> str:
        if end <= self.emitted:
            return ""
        delta = text[self.emitted : end]
        self.emitted = end
        return delta
