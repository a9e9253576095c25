"""Every model: the (logits, features) contract, the head, intermediate maps, published sizes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from oodjax import models


def _count(model, key):
    shapes = jax.eval_shape(model.init, key)  # no memory: shapes only
    return sum(int(np.prod(p.shape)) for p in jax.tree_util.tree_leaves(shapes["params"]))


# (name, kwargs, published parameter count): torchvision / the papers' reference implementations.
PUBLISHED = [
    ("resnet20", dict(num_classes=10), 269_722),  # He et al.: 0.27M
    ("resnet8", dict(num_classes=10), 75_290),  # n=1 of the same 6n+2 family, option A
    ("resnet18", dict(num_classes=10), 11_173_962),
    ("resnet34", dict(num_classes=10), 21_282_122),
    ("resnet50", dict(num_classes=10), 23_520_842),
    ("resnet18", dict(num_classes=1000, image_size=224, stem="imagenet"), 11_689_512),
    ("resnet50", dict(num_classes=1000, image_size=224, stem="imagenet"), 25_557_032),
    ("wrn40_2", dict(num_classes=10), 2_243_546),
    ("wrn28_10", dict(num_classes=10), 36_479_194),
    ("densenet121", dict(num_classes=1000, image_size=224), 7_978_856),
    ("bit_r101x1", dict(num_classes=1000, image_size=224), 44_541_480),
]


@pytest.mark.parametrize("name,kwargs,published", PUBLISHED, ids=[f"{p[0]}-{p[1]['num_classes']}" for p in PUBLISHED])
def test_published_parameter_counts(name, kwargs, published, key):
    got = _count(models.get(name, **kwargs), key)
    assert abs(got - published) / published < 0.005, (name, got, published)


@pytest.mark.parametrize("name", ["small_cnn", "resnet8", "wrn40_2", "densenet121", "bit_r101x1"])
def test_contract(name, key):
    image_size = 64 if name in ("densenet121", "bit_r101x1") else 32
    kw = dict(stem="cifar") if name == "densenet121" else {}
    model = models.get(name, num_classes=5, in_channels=6, image_size=image_size, **kw)
    if name in ("densenet121", "bit_r101x1"):  # big: check shapes abstractly
        variables = jax.eval_shape(model.init, key)
        out = jax.eval_shape(model.maps, variables, jax.ShapeDtypeStruct((2, image_size, image_size, 6), jnp.float32))
        logits, features, maps = out
        assert logits.shape == (2, 5) and features.ndim == 2 and len(maps) == 4
        assert model.head(variables).kernel.shape == (features.shape[1], 5)
        return
    variables = model.init(key)
    x = jax.random.normal(key, (3, image_size, image_size, 6))
    logits, features = model.apply(variables, x)
    head = model.head(variables)
    np.testing.assert_allclose(features @ head.kernel + head.bias[None, :], logits, rtol=1e-4, atol=1e-4)
    logits2, features2, maps = model.maps(variables, x)
    np.testing.assert_allclose(logits2, logits, rtol=1e-6)
    assert len(maps) >= 3 and all(m.ndim == 4 and m.shape[0] == 3 for m in maps)
    (train_logits, _, extras), updates = model.train_apply(variables, x, key)
    assert extras == {}
    assert train_logits.shape == (3, 5)
    assert set(updates) == {k for k in variables if k != "params"}


def test_registry_errors():
    assert {"small_cnn", "resnet20", "resnet18", "wrn28_10", "densenet121", "bit_r101x1"} <= set(models.names())
    with pytest.raises(KeyError, match="known models: bit_r101x1"):
        models.get("vit", num_classes=10)
    with pytest.raises(ValueError, match="in_channels >= 1"):
        models.get("resnet20", num_classes=10, in_channels=0)
    with pytest.raises(ValueError, match="stem must be"):
        m = models.get("resnet18", num_classes=10, stem="tiny")
        jax.eval_shape(m.init, jax.random.key(0))
