"""A setting declared once: a dataclass field that carries its command-line flag.

`TrainConfig` and `ModelConfig` declare each setting as `setting(default, help, …)`: its
name, type (how the flag's text is parsed), choices, meaning and default live on the
field, and `add_flags` makes the `--flag` from it, so no default or help text is written
a second time beside the record. A default that the data settle later (None on the field)
is described by `default_text`, composed from the constants that decide it. Fields
without a help text (the image shape, the label names: the data's) have no flag.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable


def setting(default, help: str, *, group: str, parse: Callable[[str], object] | None = None,
            choices=None, default_text: str | None = None, metavar: str | None = None,
            flag: str | None = None, const=None):
    """A dataclass field with a flag: `--name-with-dashes` (or `flag`), parsed by `parse`
    (a bool default makes a switch: `--flag` gives `const`, else the opposite of the
    default), shown under `group` in --help with `(default: …)` from `default_text` or
    the default itself."""
    return dataclasses.field(default=default, metadata={
        "help": help, "group": group, "parse": parse, "choices": choices,
        "default_text": default_text, "metavar": metavar, "flag": flag, "const": const})


def flag_name(field: dataclasses.Field) -> str:
    return field.metadata["flag"] or "--" + field.name.replace("_", "-")


def has_flag(field: dataclasses.Field) -> bool:
    return bool(field.metadata.get("help"))


def is_switch(field: dataclasses.Field) -> bool:
    """Whether the flag takes no value: a bool field, or one whose flag sets `const`."""
    return isinstance(field.default, bool) or field.metadata["const"] is not None


def shown_default(field: dataclasses.Field) -> str | None:
    """What `(default: …)` says for a field: its `default_text`, else its default (a
    tuple as the comma-separated text the flag takes); None for a switch or no default."""
    meta = field.metadata
    if meta["default_text"] is not None:
        return meta["default_text"]
    if field.default is None or is_switch(field):
        return None
    if isinstance(field.default, tuple):
        return ",".join(map(str, field.default))
    return str(field.default)


def add_flags(groups: dict[str, argparse._ArgumentGroup], record_type: type) -> None:
    """Adds a flag for every field of `record_type` that has one, to the parser group its
    field names."""
    for field in dataclasses.fields(record_type):
        if not has_flag(field):
            continue
        meta = field.metadata
        default = shown_default(field)
        text = meta["help"] + (f" (default: {default})" if default is not None else "")
        group = groups[meta["group"]]
        if is_switch(field):
            const = (not field.default) if meta["const"] is None else meta["const"]
            group.add_argument(flag_name(field), dest=field.name, action="store_const",
                               const=const, default=field.default, help=text)
            continue
        group.add_argument(flag_name(field), dest=field.name, type=meta["parse"],
                           choices=meta["choices"], default=field.default,
                           metavar=meta["metavar"], help=text)


def values_from(args: argparse.Namespace, record_type: type) -> dict:
    """{field name: parsed value} for every field of `record_type` that has a flag."""
    return {field.name: getattr(args, field.name)
            for field in dataclasses.fields(record_type) if has_flag(field)}
