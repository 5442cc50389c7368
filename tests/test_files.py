"""Atomic writes: the destination holds the old contents or the new, never part of either."""

from __future__ import annotations

import json

import pytest

from coursepkg.util.files import write_atomic, write_json


def test_a_write_replaces_the_file_and_leaves_nothing_beside_it(tmp_path):
    path = tmp_path / "deeper" / "results.json"
    write_json(path, {"cells": 21083})
    write_json(path, {"cells": 23887})
    assert json.loads(path.read_text()) == {"cells": 23887}
    assert path.read_text().endswith("\n")
    assert [p.name for p in path.parent.iterdir()] == ["results.json"]


def test_a_writer_that_fails_halfway_leaves_the_old_file_intact(tmp_path):
    path = tmp_path / "checkpoint.pt"
    write_atomic(path, b"epoch 3")

    def crash(partial):
        partial.write_bytes(b"epoch 4, half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomic(path, crash)
    assert path.read_bytes() == b"epoch 3"
