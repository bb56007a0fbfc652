from regolo.server.runtimes.transformers_server.text import (
    TextAssembler,
    find_stop,
    held_back_length,
)


class CharTokenizer:
    """Token id = one character's code point; enough to drive the assembler."""

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(chr(i) for i in ids)


def _feed(assembler: TextAssembler, text: str) -> list[str]:
    return [assembler.add(ord(char)) for char in text]


def test_find_stop_returns_the_earliest_stop() -> None:
    assert find_stop("hello world", ("world", "lo")) == 3
    assert find_stop("hello", ("x",)) is None
    assert find_stop("hello", ("",)) is None


def test_held_back_covers_a_possible_stop_prefix_and_broken_characters() -> None:
    assert held_back_length("abc EN", ("END",)) == 2
    assert held_back_length("abc", ("END",)) == 0
    assert held_back_length("ab\ufffd", ()) == 1


def test_assembler_streams_text_and_cuts_at_a_stop_string() -> None:
    assembler = TextAssembler(CharTokenizer(), stops=("END",))
    deltas = _feed(assembler, "hi ENxEND more")
    assert "".join(deltas) == "hi ENx"
    assert assembler.stopped
    assert assembler.flush() == ""


def test_assembler_flushes_held_back_text_at_the_end() -> None:
    assembler = TextAssembler(CharTokenizer(), stops=("END",))
    assert "".join(_feed(assembler, "abc EN")) == "abc "
    assert assembler.flush() == "EN"
