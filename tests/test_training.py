"""Training: sharding over 4 devices, exact resume after a kill, schedules, augmentation, bf16."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from oodjax.models import small_cnn
from oodjax.training import TrainConfig, batch_mesh, get_schedule, random_crop_flip, train


class Killed(Exception):
    pass


def _data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int32)
    x = rng.normal(size=(n, 12, 12, 1)).astype(np.float32) + y[:, None, None, None]
    return x, y


def _params_equal(a, b):
    for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


CFG = TrainConfig(epochs=2, batch_size=16, learning_rate=0.05, augment=True, checkpoint_every=4, log_every=2)


def test_resume_after_kill_is_identical(key, tmp_path, capsys):
    model = small_cnn(3, image_size=12, widths=(8, 16), feature_dim=16)
    x, y = _data()  # 6 steps per epoch, 12 in all; checkpoints at 4, 8, 12
    full, _ = train(model, x, y, CFG, key=key, workdir=tmp_path / "a", progress=False)

    def kill_at_7(step, metrics):
        if step == 7:
            raise Killed

    with pytest.raises(Killed):
        train(model, x, y, CFG, key=key, workdir=tmp_path / "b", progress=False, on_step=kill_at_7)
    seen = []
    resumed, log = train(model, x, y, CFG, key=key, workdir=tmp_path / "b", progress=False,
                         on_step=lambda s, m: seen.append(s))
    assert seen == list(range(5, 13))  # restarted from the checkpoint at step 4
    _params_equal(full, resumed)
    steps = [r["step"] for r in log if "loss" in r]
    assert steps == sorted(set(steps)) == [2, 4, 6, 8, 10, 12]  # no duplicate log lines
    lines = (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == log
    # A finished run is restored, not retrained, and says so (no 100% bar).
    again, _ = train(model, x, y, CFG, key=key, workdir=tmp_path / "b", progress=True,
                     on_step=lambda s, m: pytest.fail("retrained a finished run"))
    _params_equal(full, again)
    assert "train b: reusing the finished run in" in capsys.readouterr().out


def test_workdir_of_another_run_is_refused(key, tmp_path):
    model = small_cnn(3, image_size=12, widths=(8,), feature_dim=8)
    x, y = _data(48)
    cfg = TrainConfig(epochs=1, batch_size=16)
    train(model, x, y, cfg, key=key, workdir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"holds another training run \(it differs from this one in: config"):
        train(model, x, y, TrainConfig(epochs=2, batch_size=16), key=key, workdir=tmp_path, progress=False)


def test_sharded_matches_single_device(key):
    assert jax.device_count() == 4
    model = small_cnn(3, image_size=12, widths=(8, 16), feature_dim=16)
    x, y = _data(64)
    cfg = TrainConfig(epochs=1, batch_size=16, augment=True)
    four, _ = train(model, x, y, cfg, key=key, progress=False)
    one, _ = train(model, x, y, cfg, key=key, mesh=batch_mesh(jax.devices()[:1]), progress=False)
    for u, v in zip(jax.tree_util.tree_leaves(four), jax.tree_util.tree_leaves(one), strict=True):
        np.testing.assert_allclose(u, v, rtol=1e-4, atol=1e-5)
    assert len(four["params"]["head"]["kernel"].sharding.device_set) == 4


def test_bfloat16_compute_keeps_float32_weights(key):
    model = small_cnn(3, image_size=12, widths=(8,), feature_dim=8)
    x, y = _data(64)
    cfg = TrainConfig(epochs=2, batch_size=16, compute_dtype="bfloat16", learning_rate=0.1)
    variables, log = train(model, x, y, cfg, key=key, progress=False)
    assert all(p.dtype == jnp.float32 for p in jax.tree_util.tree_leaves(variables))
    epochs = [r["epoch_loss"] for r in log if "epoch_loss" in r]
    assert epochs[-1] < epochs[0]


def test_bad_training_input(key):
    model = small_cnn(3, image_size=12, widths=(8,), feature_dim=8)
    x, y = _data(48)
    with pytest.raises(ValueError, match="model expects"):
        train(model, x[..., :0], y, CFG, key=key)
    with pytest.raises(ValueError, match="larger than"):
        train(model, x[:8], y[:8], CFG, key=key)
    with pytest.raises(ValueError, match="divisible by the 4 devices"):
        train(model, x, y, TrainConfig(batch_size=6), key=key)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        train(model, x, y - 1, CFG, key=key)
    with pytest.raises(ValueError, match=r"3-class model, found \[0, 3\]"):
        train(model, x, np.where(y == 2, 3, y), CFG, key=key)
    with pytest.raises(ValueError, match="compute_dtype"):
        train(model, x, y, TrainConfig(batch_size=16, compute_dtype="float16"), key=key)
    with pytest.raises(KeyError, match="known: cosine, step"):
        train(model, x, y, TrainConfig(batch_size=16, schedule="linear"), key=key)


def test_schedules():
    s = get_schedule("step", base_lr=0.1, total_steps=2000, steps_per_epoch=10)
    got = [float(s(jnp.asarray(i))) for i in (0, 599, 600, 1199, 1200, 1600, 1999)]
    np.testing.assert_allclose(got, [0.1, 0.1, 0.02, 0.02, 0.004, 0.0008, 0.0008], rtol=1e-6)
    c = get_schedule("cosine", base_lr=0.2, total_steps=100, steps_per_epoch=10)
    np.testing.assert_allclose([float(c(jnp.asarray(i))) for i in (0, 50, 100, 150)], [0.2, 0.1, 0.0, 0.0], atol=1e-7)


def test_random_crop_flip(key):
    x = jnp.arange(2 * 6 * 6, dtype=jnp.float32).reshape(2, 6, 6, 1)
    out = random_crop_flip(key, x, pad=2)
    assert out.shape == x.shape
    np.testing.assert_array_equal(random_crop_flip(key, x, pad=0, flip=False), x)
    # pad 0 with flips: each image is itself or its mirror.
    flipped = random_crop_flip(jax.random.key(5), x, pad=0)
    for a, b in zip(np.asarray(flipped), np.asarray(x)):
        assert np.array_equal(a, b) or np.array_equal(a, b[:, ::-1])
