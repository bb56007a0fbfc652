"""Server-sent events, reduced to what OpenAI-style streams use: ``data:`` lines."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

DONE = "[DONE]"


def iter_sse_data(lines: Iterable[str]) -> Iterator[str]:
    """Yield the data of each event; multi-line data is joined with newlines.

    Comments (``:``) and the ``event``, ``id`` and ``retry`` fields carry nothing
    the SDK needs, so they are skipped.
    """
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data:
                yield "\n".join(data)
                data = []
            continue
        field, _, value = line.partition(":")
        if field == "data":
            data.append(value[1:] if value.startswith(" ") else value)
    if data:
        yield "\n".join(data)
