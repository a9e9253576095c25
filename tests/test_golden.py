"""Regression: the redesigned pipeline gives the records the pre-redesign code gave.

tests/golden/embedded_small_metrics.json is the metrics.json of the embedded "small" variant on
the fake Fashion-MNIST of tests/fake_data.py (2000 training / 600 test images, 2 epochs), written
by the code before the scorer-contract redesign (commit d53a603). The same config must give the
same records: every metric and tuned hyper-parameter within 1e-6.
"""

import dataclasses
import json
from pathlib import Path

import numpy as np

from experiments.run import load_config, with_dirs
from oodjax.experiment import run
from oodjax.training import TrainConfig
from tests.fake_data import make_fake_fashion_mnist

GOLDEN = Path(__file__).parent / "golden" / "embedded_small_metrics.json"


def golden_config(tmp_path: Path):
    exp = load_config("experiments/configs/embedded.py", "small")
    d = make_fake_fashion_mnist(tmp_path / "fm", n_train=2000, n_test=600)
    exp = with_dirs(exp, str(d), str(tmp_path / "results"))
    return dataclasses.replace(
        exp, name="golden", fit_size=500, progress=False, views=(),
        data=dataclasses.replace(exp.data, train_size=None, val_size=400, test_size=None, corruption_size=100,
                                 ood_test_size=100),
        train=TrainConfig(epochs=2, batch_size=64, learning_rate=0.05))


def _close(a, b, where):
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for k in a:
            _close(a[k], b[k], f"{where}/{k}")
    elif isinstance(a, float):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-6, err_msg=where)
    else:
        assert a == b, where


def test_same_records_as_before_the_redesign(tmp_path):
    golden = json.loads(GOLDEN.read_text())
    records = run(golden_config(tmp_path))["records"]
    new = {(r["scorer"], r["ood_set"]): r for r in records}
    assert len(new) == len(records)
    # `uv` left the default list (its defaults are rg itself): its golden records equal rg's.
    uv = [g for g in golden if g["scorer"] == "uv"]
    assert uv and all(abs(new[("rg", g["ood_set"])]["auroc"] - g["auroc"]) < 1e-6 for g in uv)
    golden = [g for g in golden if g["scorer"] != "uv"]
    # Scorers registered since then add records; every old (scorer, set) is still there, unchanged.
    old_scorers = {g["scorer"] for g in golden}
    assert {k for k in new if k[0] in old_scorers} == {(g["scorer"], g["ood_set"]) for g in golden}
    for old in golden:
        rec = new[(old["scorer"], old["ood_set"])]
        _close(old, {k: rec[k] for k in old}, f"{old['scorer']} on {old['ood_set']}")
