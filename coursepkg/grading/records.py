"""The records the sandboxed programs send back: a header (JSON) and a body (bytes) each.

The probe runner (:mod:`coursepkg.grading.probe`) and the notebook executor
(:mod:`coursepkg.grading.execute`) write them on their results pipe; the grader
reads them with :func:`read_records`, which stops at the first record that is cut off
or malformed: what a sandbox sends is never trusted to be well formed.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any, BinaryIO

__all__ = ["read_records", "write_record"]


def write_record(stream: BinaryIO, header: Mapping[str, Any], body: bytes = b"") -> None:
    """One record: 4 bytes of header length, the header as JSON, 8 bytes of body length, the body."""
    encoded = json.dumps(header).encode()
    stream.write(len(encoded).to_bytes(4, "big") + encoded + len(body).to_bytes(8, "big") + body)
    stream.flush()


def read_records(data: bytes) -> Iterator[tuple[dict[str, Any], bytes]]:
    """The records in ``data``, in order, up to the first one that is cut off or not a record."""
    offset = 0
    while offset + 4 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        start = offset + 4
        if start + size + 8 > len(data):
            return
        try:
            header = json.loads(data[start : start + size])
        except (UnicodeDecodeError, json.JSONDecodeError):
            return
        length = int.from_bytes(data[start + size : start + size + 8], "big")
        body_start = start + size + 8
        if not isinstance(header, dict) or body_start + length > len(data):
            return
        yield header, data[body_start : body_start + length]
        offset = body_start + length
