"""``impasto serve``'s command line: mistakes are one line and exit 2 before Ray starts."""

from __future__ import annotations

import pytest

from inference.serve import cli


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--autoscale", "3..1"], "--autoscale needs 0 <= MIN <= MAX"),
        (["--autoscale", "lots"], "--autoscale must look like MIN..MAX"),
        (["--replicas", "0"], "--replicas must be at least 1"),
        (["--replicas", "2", "--autoscale", "1..2"], "not allowed with argument"),
        (["--port", "70000"], "--port must be 1..65535"),
        (["--models", "/no/such/folder"], "model folder not found: /no/such/folder"),
        (["--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(argv, message, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("impasto serve: error: ") and message in err and "\n" not in err


def test_autoscale_bounds_are_parsed():
    assert cli.parse_autoscale("1..4") == (1, 4)
    assert cli.parse_autoscale(" 0 .. 2 ") == (0, 2)
