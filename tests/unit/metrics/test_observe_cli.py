from __future__ import annotations

from regolo.cli.observe import SPARK, sparkline


def test_sparkline_scales_to_the_largest_value() -> None:
    assert sparkline([]) == ""
    assert sparkline([0, 0]) == "  "
    line = sparkline([0, 1, 2, 4])
    assert len(line) == 4 and line[0] == " " and line[-1] == SPARK[-1]
    assert SPARK.index(line[1]) < SPARK.index(line[2]) < SPARK.index(line[3])
