"""TensorBoard event files of a training log, written without TensorFlow.

An event file is a TFRecord stream (uint64 length, masked CRC-32C of the length, payload, masked
CRC-32C of the payload) of `Event` protocol buffers: a first one with `file_version`, then one per
logged step with a `Summary` of `simple_value` scalars. This module encodes exactly those few
fields, so training needs no TensorFlow import; `tests/test_tensorboard.py` reads the files back
with TensorFlow's own TFRecord reader and `Event` parser.

The files are written anew from the whole log (`write_events`), so after a resume they hold
exactly what `metrics.jsonl` holds: the steps past the restored checkpoint are gone from both.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

_CRC_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = (_c >> 1) ^ 0x82F63B78 if _c & 1 else _c >> 1  # Castagnoli polynomial, reflected
    _CRC_TABLE.append(_c)


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of `data`, as TFRecord frames use it."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> int:
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def _record(payload: bytes) -> bytes:
    length = struct.pack("<Q", len(payload))
    return length + struct.pack("<I", _masked_crc(length)) + payload + struct.pack("<I", _masked_crc(payload))


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1  # int64 fields are encoded as two's complement
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:  # a length-delimited field (wire type 2)
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _event(wall_time: float, step: int | None = None, *, version: str | None = None,
           scalars: Mapping[str, float] | None = None) -> bytes:
    """Event{wall_time = 1 (double), step = 2 (int64), file_version = 3, summary = 5}."""
    out = b"\x09" + struct.pack("<d", wall_time)
    if step is not None:
        out += b"\x10" + _varint(step)
    if version is not None:
        out += _field(3, version.encode())
    if scalars:
        # Summary{value = 1}, Value{tag = 1 (string), simple_value = 2 (float)}; beyond float32: +-inf
        with np.errstate(over="ignore"):
            values = b"".join(_field(1, _field(1, tag.encode()) + b"\x15" + np.asarray(v, "<f4").tobytes())
                              for tag, v in scalars.items())
        out += _field(5, values)
    return out


def write_events(log_dir: str | os.PathLike, records: Iterable[Mapping[str, float]], *,
                 prefix: str = "train", start_time: float | None = None) -> Path:
    """Writes `records` (dicts with a "step" and numeric values) as one TensorBoard event file.

    Each numeric entry other than "step" and "epoch" becomes the scalar `<prefix>/<name>` at that
    step; the wall time is the record's "time" (unix seconds) where it has one, else start_time
    (default: now). Event files already
    in `log_dir` are replaced (atomically: the new file is complete before the old ones go).
    Returns the path of the new file.
    """
    log_dir = Path(log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    now = time.time()
    start_time = now if start_time is None else float(start_time)
    chunks = [_record(_event(start_time, version="brain.Event:2"))]
    for r in records:
        scalars = {f"{prefix}/{k}": float(v) for k, v in r.items()
                   if k not in ("step", "epoch", "time") and isinstance(v, (int, float)) and not isinstance(v, bool)}
        if scalars:
            wall = float(r.get("time", start_time))
            chunks.append(_record(_event(wall, int(r["step"]), scalars=scalars)))
    old = list(log_dir.glob("events.out.tfevents.*"))
    path = log_dir / f"events.out.tfevents.{int(now * 1e6)}.{socket.gethostname()}"
    tmp = log_dir / ".writing"  # TensorBoard reads files named *tfevents*: this one only once complete
    tmp.write_bytes(b"".join(chunks))
    os.replace(tmp, path)
    for f in old:
        if f != path:
            f.unlink(missing_ok=True)
    return path
