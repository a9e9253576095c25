"""Fashion-MNIST IDX loading and the offline OOD sets."""

import jax
import numpy as np
import pytest

from oodjax import data
from tests.fake_data import make_fake_fashion_mnist, write_idx


def test_read_idx_round_trip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", a, compress=False)
    write_idx(tmp_path / "b", a, compress=True)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a"), a)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "b.gz"), a)


def test_read_idx_rejects_garbage(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04hello")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", np.zeros((4, 4)), compress=False)
    raw = (tmp_path / "short").read_bytes()
    (tmp_path / "short").write_bytes(raw[:-3])
    with pytest.raises(ValueError, match="header says shape"):
        data.read_idx(tmp_path / "short")


def test_load_fashion_mnist(tmp_path):
    d = make_fake_fashion_mnist(tmp_path / "fm", n_train=50, n_test=20)
    x, y = data.load_fashion_mnist("train", d)
    assert x.shape == (50, 28, 28, 1) and x.dtype == np.float32 and y.shape == (50,)
    assert 0.0 <= x.min() and x.max() <= 1.0 and y.dtype == np.int32
    assert data.load_fashion_mnist("test", d)[0].shape == (20, 28, 28, 1)
    with pytest.raises(ValueError, match="split"):
        data.load_fashion_mnist("validation", d)


def test_missing_data_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv(data.fashion_mnist.ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist.*data_dir"):
        data.load_fashion_mnist("train", tmp_path)
    monkeypatch.setenv(data.fashion_mnist.ENV_VAR, str(make_fake_fashion_mnist(tmp_path / "env", 10, 10)))
    assert data.load_fashion_mnist("train")[0].shape[0] == 10


def test_ood_sets(key):
    digits = data.digits()
    assert digits.shape == (1797, 28, 28, 1) and 0 <= digits.min() and digits.max() <= 1
    g = data.gaussian_noise(key, 100)
    np.testing.assert_array_equal(g, data.gaussian_noise(key, 100))
    assert g.shape == (100, 28, 28, 1) and g.min() == 0.0 and g.max() == 1.0  # clipped N(0.5, 1)
    assert abs(float(np.mean(g)) - 0.5) < 0.02
    u = data.uniform_noise(jax.random.key(3), 50)
    assert 0 <= u.min() and u.max() < 1 and abs(float(u.mean()) - 0.5) < 0.02
    nearest, bicubic = data.digits(method="nearest"), data.digits(method="bicubic")
    assert not np.allclose(nearest, bicubic)
    with pytest.raises(ValueError, match="method"):
        data.digits(method="area")
