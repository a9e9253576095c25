"""TensorBoard event files: written without TensorFlow, read back with TensorFlow's own reader."""

import json

import numpy as np
import pytest

from oodjax.models import small_cnn
from oodjax.training import TrainConfig, train
from oodjax.training.tensorboard import crc32c, write_events


def _read(path):
    """(step, tag, value) and wall times of every scalar, through tf's TFRecord reader + Event proto."""
    tf = pytest.importorskip("tensorflow")
    from tensorflow.core.util import event_pb2

    events = [event_pb2.Event.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(path))]
    scalars = [(e.step, v.tag, v.simple_value) for e in events for v in e.summary.value]
    return events, scalars


def test_crc32c_known_values():
    assert crc32c(b"") == 0
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value (RFC 3720, B.4)
    assert crc32c(bytes(32)) == 0x8A9136AA


def test_events_read_back_by_tensorflow(tmp_path):
    records = [{"step": 2, "epoch": 1, "loss": 1.5, "accuracy": 0.25, "time": 1000.5},
               {"step": 4, "epoch": 1, "epoch_loss": 1.25, "time": 1001.0},
               {"step": 10**10, "loss": -3.0}]
    path = write_events(tmp_path, records, start_time=999.0)
    events, scalars = _read(path)
    assert events[0].file_version == "brain.Event:2" and events[0].wall_time == 999.0
    assert [e.wall_time for e in events[1:]] == [1000.5, 1001.0, 999.0]
    assert scalars == [(2, "train/loss", 1.5), (2, "train/accuracy", 0.25), (4, "train/epoch_loss", 1.25),
                       (10**10, "train/loss", -3.0)]
    # A rewrite replaces the old file; a damaged byte is caught by tf's CRC check (so ours are right).
    again = write_events(tmp_path, records[:1])
    assert [p.name for p in tmp_path.glob("*tfevents*")] == [again.name]
    raw = bytearray(again.read_bytes())
    raw[-6] ^= 0xFF
    again.write_bytes(bytes(raw))
    with pytest.raises(Exception, match="(?i)corrupt|checksum|crc|data ?loss"):  # tf.errors.DataLossError
        _read(again)
    # A value beyond float32's range is written as inf, not an error at an epoch's end.
    _, big = _read(write_events(tmp_path, [{"step": 1, "loss": 1e300}]))
    assert big == [(1, "train/loss", float("inf"))]


def test_training_writes_the_log_as_events(key, tmp_path):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 64).astype(np.int32)
    x = rng.normal(size=(64, 12, 12, 1)).astype(np.float32) + y[:, None, None, None]
    cfg = TrainConfig(epochs=2, batch_size=16, log_every=2)
    _, log = train(small_cnn(3, image_size=12, widths=(8,), feature_dim=8), x, y, cfg, key=key,
                   workdir=tmp_path, progress=False)
    files = list((tmp_path / "tensorboard").glob("*tfevents*"))
    assert len(files) == 1
    _, scalars = _read(files[0])
    want = [(r["step"], f"train/{k}", np.float32(v)) for r in log for k, v in r.items()
            if k not in ("step", "epoch", "time")]
    assert [(s, t, np.float32(v)) for s, t, v in scalars] == want
    assert {t for _, t, _ in scalars} >= {"train/loss", "train/accuracy", "train/epoch_loss"}
    assert [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()] == log
