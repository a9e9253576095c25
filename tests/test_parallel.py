"""Several devices and processes: a 2-process run on localhost (jax.distributed, CPU collectives)
writes the metrics.json of a 1-process run on 4 devices; each process reads only its rows."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from experiments import run as run_cli
from oodjax.data import ArraySource, ArrayImages, Rows
from oodjax.evaluate import _reads
from oodjax.parallel import batch_mesh, global_batch, local_rows, to_host
from tests.fake_data import make_fake_fashion_mnist

REPO = Path(__file__).resolve().parents[1]
CONFIG = "tests/configs/two_process.py"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def test_two_processes_write_the_metrics_json_of_one(tmp_path):
    data = make_fake_fashion_mnist(tmp_path / "fm", n_train=500, n_test=250)
    port = _free_port()
    flags = os.environ.get("XLA_FLAGS", "").replace("--xla_force_host_platform_device_count=4", "")
    env = {**os.environ, "XLA_FLAGS": f"{flags} --xla_force_host_platform_device_count=2".strip()}
    procs = [subprocess.Popen(
        [sys.executable, "-m", "experiments.run", CONFIG, "--data-dir", str(data), "--results-dir",
         str(tmp_path / "two"), "--coordinator", f"localhost:{port}", "--num-processes", "2", "--process-id", str(i)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for i in (0, 1)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert "ID test accuracy" in outs[0] and "ID test accuracy" not in outs[1]  # process 0 reports

    exp = run_cli.with_dirs(run_cli.load_config(CONFIG, "default"), str(data), str(tmp_path / "one"))
    assert len(jax.devices()) == 4 and jax.process_count() == 1
    from oodjax.experiment import run

    run(exp)
    one = json.loads((tmp_path / "one/two_process/metrics.json").read_text())
    two = json.loads((tmp_path / "two/two_process/metrics.json").read_text())
    assert len(one) == 6 * 6 and two == one
    run_json = json.loads((tmp_path / "two/two_process/run.json").read_text())
    assert run_json["provenance"]["process_count"] == 2 and len(run_json["provenance"]["devices"]) == 4
    log = (tmp_path / "two/two_process/train_all_classes/metrics.jsonl").read_text().splitlines()
    assert len(log) == len(set(log)) > 0  # one process wrote the log


def test_each_process_reads_its_rows_of_every_batch():
    """_reads with 2 processes of 2 devices, simulated: the two halves of each 100-row batch,
    read by index (Rows, ArraySource) or sliced from a whole read (any source), are the batch."""
    images = np.random.default_rng(0).uniform(size=(250, 4, 4, 1)).astype(np.float32)

    def rows(source, lo, hi):
        return [(read(), n) for read, n in _reads(source, 100, lo, hi)]

    for source in (Rows(ArrayImages(images)), ArraySource(images)):
        halves = [rows(source, lo, hi) for lo, hi in ((0, 50), (50, 100))]
        assert [n for _, n in halves[0]] == [n for _, n in halves[1]] == [100, 100, 50]
        assert halves[1][2][0] is None  # the last batch's 50 rows are all process 0's
        got = np.concatenate([x for pair in zip(*halves, strict=True) for x, _ in pair if x is not None])
        np.testing.assert_array_equal(got, images)

    class Streamed:  # a source without index reads: read whole, sliced per process
        def batches(self, b):
            yield from (images[i : i + b] for i in range(0, 250, b))

    assert [None if x is None else x.shape[0] for x, _ in rows(Streamed(), 50, 100)] == [50, 50, None]


def test_one_process_holds_every_row():
    mesh = batch_mesh()
    sharded = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("batch"))
    assert local_rows(sharded, 8) == (0, 8)
    x = np.arange(24, dtype=np.float32).reshape(8, 3)
    g = global_batch(x, sharded, 8)
    assert g.sharding == sharded and len(g.addressable_shards) == 4
    np.testing.assert_array_equal(to_host(g), x)


def test_cli_wants_all_three_coordinates():
    for argv in (["--coordinator", "localhost:1"], ["--distributed", "--process-id", "0"]):
        with pytest.raises(SystemExit):
            run_cli.main([CONFIG, *argv])
