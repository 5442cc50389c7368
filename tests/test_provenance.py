"""coursepkg.util.provenance: the record every benchmark stores, and its text that fits a phone."""

from __future__ import annotations

import json
import os

import pytest

from coursepkg.util.provenance import format_provenance, provenance
from tests.conftest import ROOT


def test_the_record_says_what_ran_where_and_with_which_versions():
    record = provenance("python -m coursepkg benchmark lsi --threads 2", load_before=os.getloadavg())
    assert record["command"] == "python -m coursepkg benchmark lsi --threads 2"
    assert record["machine"]["cores"] >= 1 and len(record["machine"]["load_average"]["after"]) == 3
    assert set(record["versions"]) == {"python", "torch", "numpy", "ribs", "coursepkg"}


@pytest.mark.parametrize("name", ["mode", "mnist", "lsi"])
def test_the_saved_records_print_in_short_lines_that_keep_the_command_whole(name):
    record = json.loads((ROOT / "book" / "data" / f"{name}_benchmark.json").read_text())["provenance"]
    text = format_provenance(record)
    assert max(len(line) for line in text.splitlines()) <= 76
    command = text.split("\n")[0].removeprefix("$ ")
    lines = text.splitlines()
    while command.endswith(" \\"):  # a long command continues on the next line
        lines.pop(0)
        command = command.removesuffix(" \\") + " " + lines[0].strip()
    assert command == record["command"]
