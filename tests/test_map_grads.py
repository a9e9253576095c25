"""Model.map_grads: the gradient of a per-sample loss with respect to every intermediate map, for
every zoo architecture, against central finite differences of forward passes (float64), a closed
form and a chain rule written out in numpy; and rows that are each sample's own."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from oodjax import scores
from oodjax.models import from_flax
from oodjax.models._types import PERTURBATIONS, tap
from oodjax.models.bit import ResNetV2
from oodjax.models.densenet import DenseNet
from oodjax.models.resnet import ResNet, cifar_resnet
from oodjax.models.small_cnn import SmallCNN
from oodjax.models.vit import VisionTransformer
from oodjax.models.wrn import WideResNet

C = 5
ZOO = {
    "small_cnn": (SmallCNN(C, widths=(4, 6, 8), feature_dim=8), (12, 12, 2)),
    "resnet8": (cifar_resnet(8, C), (8, 8, 3)),
    "resnet_bottleneck": (ResNet(C, (1, 1, 1, 1), (4, 4, 8, 8), bottleneck=True, base_width=16), (16, 16, 3)),
    "wrn10_1": (WideResNet(C, 10, 1), (8, 8, 3)),
    "densenet": (DenseNet(C, (1, 1, 1), growth=4, init_features=8, stem="cifar", bn_size=2), (8, 8, 3)),
    "bit": (ResNetV2(C, (1, 1, 1, 1), widths=(32, 32, 32, 32), root_width=32), (16, 16, 3)),
    "vit": (VisionTransformer(C, patch=4, width=8, depth=4, heads=2, mlp_dim=8), (8, 8, 3)),
}


def _f64(tree):
    return jax.tree.map(lambda a: a.astype(jnp.float64) if jnp.issubdtype(a.dtype, jnp.floating) else a, tree)


def _randomized(module, shape, key):
    """Float64 variables with random (not identity) batch statistics and a non-zero head."""
    model = from_flax(module, shape)
    variables = _f64(model.init(key))
    k_stats, k_head = jax.random.split(jax.random.key(7))
    leaves, tree = jax.tree.flatten(variables.get("batch_stats", {}))
    keys = jax.random.split(k_stats, len(leaves))
    leaves = [a * (1 + 0.5 * jax.random.uniform(k, a.shape, a.dtype)) + 0.1 * jax.random.uniform(k, a.shape, a.dtype)
              for a, k in zip(leaves, keys)]  # means shifted, variances stay > 0
    params = dict(variables["params"])
    head = dict(params["head"])
    head["kernel"] = jax.random.normal(k_head, head["kernel"].shape, jnp.float64)  # ViT's starts at zero
    params["head"] = head
    return model, {**variables, "params": params, **({"batch_stats": jax.tree.unflatten(tree, leaves)} if leaves else {})}


def _map_grads(model):
    """model.map_grads of the KL-to-uniform loss, compiled (one program per batch shape)."""
    return jax.jit(lambda v, x: model.map_grads(v, x, scores.uniform_kl_loss))


@pytest.mark.parametrize("name", sorted(ZOO))
def test_map_grads_are_finite_differences_of_forward_passes(name):
    """<grad_l, v_l> = (L(+eps v) - L(-eps v)) / 2 eps, the map perturbed by eps v through the
    module's own perturbation variables, for a random direction v on every map."""
    module, shape = ZOO[name]
    # flax's GroupNorm promotes its float64 input with float32 (BiT): standard promotion here
    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"):
        model, variables = _randomized(module, shape, jax.random.key(0))
        x = jax.random.normal(jax.random.key(1), (3, *shape), jnp.float64)
        logits, features, maps, grads = _map_grads(model)(variables, x)
        np.testing.assert_allclose(logits, model.apply(variables, x)[0], rtol=1e-12)
        assert len(grads) == len(maps) >= 3 and all(g.shape == m.shape for g, m in zip(grads, maps))
        pert = module.apply(variables, x, train=False, mutable=[PERTURBATIONS])[1][PERTURBATIONS]
        flat, tree = jax.tree.flatten(pert)
        paths = [p for p, _ in jax.tree_util.tree_flatten_with_path(pert)[0]]
        order = [int(str(p[-1].key).rsplit("_", 1)[1]) for p in paths]  # leaf -> map index
        # Directions that leave zero entries alone: post-ReLU zeros tie in a max-pool window, where
        # the loss is not differentiable (SmallCNN); elsewhere this only drops some directions.
        dirs = [jax.random.normal(jax.random.key(10 + i), m.shape, jnp.float64) * (m != 0) for i, m in enumerate(maps)]

        @jax.jit
        def total(pv):  # one compiled forward pass with the perturbations pv
            return jnp.sum(scores.uniform_kl_loss(model.apply({**variables, PERTURBATIONS: pv}, x)[0]))

        def loss_i(eps, i):  # map i perturbed by eps * dirs[i]
            return float(total(jax.tree.unflatten(tree, [(eps if j == i else 0.0) * dirs[j] for j in order])))

        eps = 1e-5
        for i in range(len(maps)):  # one map at a time
            fd = (loss_i(eps, i) - loss_i(-eps, i)) / (2 * eps)
            np.testing.assert_allclose(float(jnp.vdot(grads[i], dirs[i])), fd, rtol=1e-6, atol=1e-10)
        assert loss_i(0.0, 0) == pytest.approx(float(jnp.sum(scores.uniform_kl_loss(logits))), rel=1e-12)


@pytest.mark.parametrize("name", ["small_cnn", "resnet8", "densenet", "vit"])
def test_map_grads_rows_are_each_samples_own(name):
    module, shape = ZOO[name]
    with jax.enable_x64(True), jax.numpy_dtype_promotion("standard"):  # flax's LayerNorm (ViT)
        model, variables = _randomized(module, shape, jax.random.key(0))
        x = jax.random.normal(jax.random.key(2), (4, *shape), jnp.float64)
        _, _, _, batch = _map_grads(model)(variables, x)
        for n in range(4):
            _, _, _, one = _map_grads(model)(variables, x[n:n + 1])
            for g, g1 in zip(batch, one):
                np.testing.assert_allclose(g[n:n + 1], g1, rtol=1e-10, atol=1e-14)


def test_last_resnet_map_gradient_is_the_closed_form():
    """ResNet's features are the spatial mean of its last map, so d/dmap of -(1/C) sum log p is
    (p - 1/C) W^T / (H W) at every position (the penultimate NAC gradient, spread)."""
    with jax.enable_x64(True):
        model, variables = _randomized(cifar_resnet(8, C), (8, 8, 3), jax.random.key(0))
        x = jax.random.normal(jax.random.key(3), (3, 8, 8, 3), jnp.float64)
        logits, _, maps, grads = _map_grads(model)(variables, x)
        z = np.asarray(logits)
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        w = np.asarray(model.head(variables).kernel)
        _, h, wd, _ = maps[-1].shape
        want = ((p - 1.0 / C) @ w.T)[:, None, None, :] / (h * wd) * np.ones(maps[-1].shape)
        np.testing.assert_allclose(grads[-1], want, rtol=1e-10, atol=1e-14)


class _Two(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
        h = tap(self, nn.relu(nn.Conv(3, (3, 3), name="conv")(x)), 0)
        features = nn.relu(nn.Dense(6, name="hidden")(h.reshape(h.shape[0], -1)))
        return nn.Dense(C, name="head")(features), features


def test_map_gradient_by_the_chain_rule_in_numpy():
    with jax.enable_x64(True):
        model = from_flax(_Two(), (4, 4, 1))
        variables = _f64(model.init(jax.random.key(0)))
        x = jax.random.normal(jax.random.key(1), (5, 4, 4, 1), jnp.float64)
        logits, _, (h,), (g,) = model.map_grads(variables, x, scores.uniform_kl_loss)
    prm = jax.tree.map(np.asarray, variables["params"])
    hf = np.asarray(h).reshape(5, -1)
    pre = hf @ prm["hidden"]["kernel"] + prm["hidden"]["bias"]
    z = np.maximum(pre, 0) @ prm["head"]["kernel"] + prm["head"]["bias"]
    np.testing.assert_allclose(logits, z, rtol=1e-12)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    d_features = (p - 1.0 / C) @ prm["head"]["kernel"].T
    d_h = ((pre > 0) * d_features) @ prm["hidden"]["kernel"].T
    np.testing.assert_allclose(np.asarray(g).reshape(5, -1), d_h, rtol=1e-10, atol=1e-14)


class _Untapped(nn.Module):
    @nn.compact
    def __call__(self, x, train=False):
        self.sow("intermediates", "maps", x)
        features = jnp.mean(x, axis=(1, 2))
        return nn.Dense(C, name="head")(features), features


def test_untapped_maps_are_an_error_that_names_the_fix():
    model = from_flax(_Untapped(), (4, 4, 2))
    variables = model.init(jax.random.key(0))
    assert PERTURBATIONS not in variables  # init never keeps the zero perturbations
    with pytest.raises(ValueError, match=r"models.tap\(self, x, i\)"):
        model.map_grads(variables, jnp.ones((2, 4, 4, 2)), scores.uniform_kl_loss)
