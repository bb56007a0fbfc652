"""Resource quantities: what parses, to what, and what is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from regolo.server.quantities import MAX_CPU_CORES, MAX_MEMORY_BYTES, parse_cpu, parse_memory


@pytest.mark.parametrize(
    ("quantity", "cores"),
    [
        ("2", 2.0),
        ("0.5", 0.5),
        ("500m", 0.5),
        ("1500m", 1.5),
        (" 4 ", 4.0),
        ("1m", 0.001),
        ("1024", 1024.0),
    ],
)
def test_cpu(quantity: str, cores: float) -> None:
    assert parse_cpu(quantity) == pytest.approx(cores)


@pytest.mark.parametrize(
    "quantity",
    ["", "0", "0m", "-1", "1.5.2", "2 cores", "1e3", "500M", "1025", "m", "1,5", "NaN", "inf"],
)
def test_bad_cpu(quantity: str) -> None:
    with pytest.raises(ValueError):
        parse_cpu(quantity)


@pytest.mark.parametrize(
    ("quantity", "size"),
    [
        ("4Gi", 4 * 2**30),
        ("512Mi", 512 * 2**20),
        ("1G", 10**9),
        ("1k", 1000),
        ("1K", 1000),
        ("1Ki", 1024),
        ("1.5Gi", 3 * 2**29),
        ("123", 123),
        ("1Ti", 2**40),
    ],
)
def test_memory(quantity: str, size: int) -> None:
    assert parse_memory(quantity) == size


@pytest.mark.parametrize(
    "quantity", ["", "0", "0Gi", "-1Gi", "4GB", "4gi", "Gi", "1Pi", "1025Ti", "4 Gi", "1e9"]
)
def test_bad_memory(quantity: str) -> None:
    with pytest.raises(ValueError):
        parse_memory(quantity)


@pytest.mark.parametrize("quantity", ["0.5", "0.0000001"])
def test_fractions_of_a_byte_are_refused(quantity: str) -> None:
    with pytest.raises(ValueError):
        parse_memory(quantity)


@given(st.text(max_size=30))
def test_anything_parses_or_raises_value_error(text: str) -> None:
    for parse in (parse_cpu, parse_memory):
        try:
            value = parse(text)
        except ValueError:
            continue
        assert value > 0


@given(st.integers(min_value=1, max_value=MAX_CPU_CORES * 1000))
def test_millicores_round_trip(millicores: int) -> None:
    assert parse_cpu(f"{millicores}m") == pytest.approx(millicores / 1000)


@given(st.integers(min_value=1, max_value=MAX_MEMORY_BYTES // 2**20))
def test_mebibytes_round_trip(mebibytes: int) -> None:
    assert parse_memory(f"{mebibytes}Mi") == mebibytes * 2**20
