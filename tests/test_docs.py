"""The README and docs/ against the code: every flag they name belongs to the command they
name it for, every default they state is the parser's, and their Python snippets that need
no trained run run as written."""

from __future__ import annotations

import functools
import glob
import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # every check runs the commands' --help in subprocesses
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGES = ["README.md", *sorted(os.path.relpath(p, ROOT)
                              for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))]
COMMANDS = {
    "keras_vae.train": [sys.executable, "-m", "keras_vae.train"],
    "keras_vae.evaluate": [sys.executable, "-m", "keras_vae.evaluate"],
    "keras_vae.plot": [sys.executable, "-m", "keras_vae.plot"],
    "keras_vae.bench": [sys.executable, "-m", "keras_vae.bench"],
    "keras_vae.score": [sys.executable, "-m", "keras_vae.score"],
    "keras_vae.score_bench": [sys.executable, "-m", "keras_vae.score_bench"],
    "export": [sys.executable, "-m", "export"],
    "export.bench": [sys.executable, "-m", "export.bench"],
    "export.web_bench": [sys.executable, "-m", "export.web_bench"],
    "sample.py": [sys.executable, "serving/sample.py"],
    "tf_serving_client.py": [sys.executable, "serving/tf_serving_client.py"],
    "score.py": [sys.executable, "serving/score.py"],
    "keras_vae.photo_crops": [sys.executable, "-m", "keras_vae.photo_crops"],
}
COMMAND_LINE = re.compile(r"python3? (?:-m (keras_vae\.\w+|export(?:\.\w+)?)\b|"
                          r"(?:serving/)?(sample\.py|tf_serving_client\.py|score\.py))")
OTHER_PROGRAMS = {
    # flags of programs that are not this project's, as the docs show them
    "--dist", "--rm", "--model_config_file", "--enable_batching", "--batching_parameters_file",
    "--no-audit", "--no-fund", "--loglevel", "--headless", "--upgrade", "--quiet",
    "--data_dir",  # tfds build
    "--rest_api_port",  # tensorflow_model_server
    "--xla_cpu_prefer_vector_width",  # XLA_FLAGS
    "--logdir",  # tensorboard
}
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*[a-z0-9]")


def _read(page: str) -> str:
    with open(os.path.join(ROOT, page)) as f:
        return f.read()


@functools.cache
def _help(command: str) -> str:
    done = subprocess.run([*COMMANDS[command], "--help"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return " ".join(done.stdout.split())


@functools.cache
def _flags(command: str) -> frozenset[str]:
    return frozenset(FLAG.findall(_help(command)))


def _command_lines(page: str):
    """(line, command, the flags after the command's name) for each command line in the
    page's code blocks, `\\`-continued lines joined."""
    for block in re.findall(r"```(?:bash|text)?\n(.*?)```", _read(page), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            code = line.split("  #")[0]
            for match in COMMAND_LINE.finditer(code):
                command = match.group(1) or match.group(2)
                rest = code[match.end():]
                nxt = COMMAND_LINE.search(rest)
                yield line, command, FLAG.findall(rest[:nxt.start()] if nxt else rest)


@pytest.mark.parametrize("page", PAGES)
def test_every_command_line_uses_flags_its_command_has(page):
    wrong = [f"{command} {flag}  ({line.strip()})" for line, command, flags in
             _command_lines(page) for flag in flags if flag not in _flags(command)]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("page", PAGES)
def test_every_flag_named_in_prose_is_a_flag_of_some_command(page):
    known = set(OTHER_PROGRAMS).union(*(_flags(c) for c in COMMANDS))
    unknown = sorted(set(FLAG.findall(_read(page))) - known)
    assert not unknown, unknown


def _table_defaults(page: str):
    """(flag, the default the table states) for every row of a table with a `default`
    column whose first cell names train's flags: several flags in one cell take their
    defaults from the default cell split at ", " in the same order."""
    for table in re.findall(r"(^\|[^\n]*\|\n\|[-| ]+\|\n(?:\|[^\n]*\|\n?)+)", _read(page), re.M):
        header = [c.strip().lower() for c in table.splitlines()[0].strip("|").split("|")]
        if "default" not in header or header[0] != "flag":
            continue
        column = header.index("default")
        for row in table.splitlines()[2:]:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", row.strip().strip("|"))]
            flags = FLAG.findall(cells[0])
            defaults = cells[column].replace("`", "").split(", ")
            if len(defaults) != len(flags):
                defaults = [cells[column].replace("`", "")]
            yield from zip(flags, defaults, strict=False)


def _parser_default(flag: str) -> str | None:
    """What train's --help says of the flag's default: its `(default: …)`, "off" for a
    switch, None when it states none."""
    from keras_vae.train import make_parser

    action = next(a for a in make_parser()._actions if flag in a.option_strings)
    stated = re.search(r"\(default: (.*)\)$", " ".join((action.help or "").split()))
    if stated:
        return stated.group(1)
    return "off" if action.nargs == 0 else None


@pytest.mark.parametrize("page", ["README.md", "docs/training.md"])
def test_defaults_stated_in_flag_tables_are_the_parsers(page):
    rows = list(_table_defaults(page))
    assert rows, f"{page} has no table of train's flags"
    wrong = [f"{flag}: the table says {said!r}, --help {_parser_default(flag)!r}"
             for flag, said in rows if _parser_default(flag) not in (None, said)]
    assert not wrong, "\n".join(wrong)


def test_docs_python_snippets_that_need_no_run_execute():
    """Every ```python block outside python.md (whose examples tests/test_trained.py runs)
    that names no run directory runs as written: a page's blocks one after another in a
    fresh interpreter, as a reader pastes them."""
    for page in PAGES:
        blocks = [block for block in re.findall(r"```python\n(.*?)```", _read(page), re.S)
                  if not re.search(r"runs?/|RUN_DIR|run_dir", block)]
        if page.endswith("python.md") or not blocks:
            continue
        done = subprocess.run([sys.executable, "-c", "\n".join(blocks)], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, f"{page}:\n{done.stderr[-1500:]}"
