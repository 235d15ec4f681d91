"""Specification of keras_vae/run/atomic.py: a failed write never replaces the real file."""

from __future__ import annotations

import json
import os

import pytest

from keras_vae.run.atomic import atomic_path, write_json


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "summary.json"
    write_json(str(path), {"version": 1})
    with pytest.raises(RuntimeError), atomic_path(str(path)) as tmp:
        with open(tmp, "w") as f:
            f.write('{"version": 2, "trunc')
        raise RuntimeError("crash mid-write")
    assert json.loads(path.read_text()) == {"version": 1}
    assert os.listdir(tmp_path) == ["summary.json"]


def test_a_directory_is_replaced_whole(tmp_path):
    target = tmp_path / "saved_model"
    for version in ("old", "new"):
        with atomic_path(str(target)) as tmp:
            os.makedirs(tmp)
            (open(os.path.join(tmp, version), "w")).close()
    assert os.listdir(target) == ["new"]
    assert sorted(os.listdir(tmp_path)) == ["saved_model"]
