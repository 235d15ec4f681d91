"""Specification of keras_vae/run/cli.py: validated flags, one-line errors, exit codes."""

from __future__ import annotations

import argparse

import pytest

from keras_vae.run.cli import (
    RunFailure,
    UsageError,
    int_list,
    non_negative_float,
    positive_float,
    positive_int,
    run_command,
    size_pair,
)


@pytest.mark.parametrize("parse, text, expected", [
    (positive_int, "3", 3), (positive_float, "1e-3", 1e-3), (non_negative_float, "0", 0.0),
    (int_list, "512, 256", (512, 256)), (int_list, "400", (400,)),
    (size_pair, "64,48", (64, 48)), (size_pair, "32", (32, 32)),
])
def test_valid_values_parse(parse, text, expected):
    assert parse(text) == expected


@pytest.mark.parametrize("parse, text, message", [
    (positive_int, "0", "'0' must be at least 1"),
    (positive_int, "2.5", "'2.5' is not a whole number"),
    (positive_float, "0", "'0' must be above 0"),
    (positive_float, "inf", "'inf' is not a finite number"),
    (non_negative_float, "-1", "'-1' must be at least 0"),
    (int_list, "400,,3", "is not a comma-separated list"),
    (size_pair, "64x48", "is not HEIGHT,WIDTH or one SIZE"),
    (size_pair, "8,8,3", "is not HEIGHT,WIDTH or one SIZE"),
    (size_pair, "0,8", "height and width must be at least 1"),
])
def test_invalid_values_say_what_is_wrong(parse, text, message):
    with pytest.raises(argparse.ArgumentTypeError, match=message):
        parse(text)


@pytest.mark.parametrize("error, code", [(UsageError("bad flag"), 2),
                                         (RunFailure("offline"), 1)])
def test_project_errors_become_one_stderr_line_and_an_exit_code(error, code, capsys):
    def main(argv):
        raise error

    assert run_command(main, "prog", []) == code
    assert capsys.readouterr().err == f"prog: error: {error}\n"


def test_debug_flag_shows_the_traceback():
    def main(argv):
        raise UsageError("bad flag")

    with pytest.raises(UsageError):
        run_command(main, "prog", ["--debug"])


def test_success_exits_zero():
    assert run_command(lambda argv: None, "prog", []) == 0
