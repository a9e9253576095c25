"""ntk_analysis: every empirical NTK implementation against the jacrev reference (float64), eq. 4
against neural-tangents with the stated constants, eq. 6's Gamma, spectra, and the figures."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import ntk_analysis as na
from ntk_analysis import __main__ as cli
from ntk_analysis import figures
from oodjax import models
from tests.fake_data import make_fake_fashion_mnist


def _flax_nets():
    cnn = models.get("small_cnn", num_classes=3, in_channels=2, image_size=6, widths=(3, 4), feature_dim=5)
    mlp = figures.toy_mlp(4, width=7)
    return {"small_cnn": (cnn, (5, 6, 6, 2)), "mlp": (mlp, (5, 4))}


@pytest.mark.parametrize("net", ["small_cnn", "mlp"])
@pytest.mark.parametrize("impl", [i for i in na.Implementation if i is not na.Implementation.REFERENCE])
def test_empirical_implementations_equal_the_reference(net, impl):
    with jax.enable_x64(True):
        model, shape = _flax_nets()[net]
        variables = jax.tree.map(lambda a: a.astype(jnp.float64), model.init(jax.random.key(0)))
        f = na.flax_apply_fn(model, variables)
        x1 = jax.random.normal(jax.random.key(1), shape, jnp.float64)
        x2 = jax.random.normal(jax.random.key(2), (3, *shape[1:]), jnp.float64)
        for trace in (True, False):
            ref = na.reference_ntk(f, variables["params"], x1, x2, trace=trace)
            got = na.empirical_ntk(f, variables["params"], x1, x2, implementation=impl, trace=trace)
            outputs = f(variables["params"], x1).shape[1]
            assert got.shape == ((5, 3) if trace else (5, 3, outputs, outputs))
            np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-10)
        # The reference itself: J J^T of the flattened parameters, for one pair of inputs.
        flat, unravel = jax.flatten_util.ravel_pytree(variables["params"])
        j = jax.jacobian(lambda p, x: f(unravel(p), x))
        a, b = j(flat, x1[:1])[0], j(flat, x2[:1])[0]  # (O, P)
        untraced = na.reference_ntk(f, variables["params"], x1, x2, trace=False)
        np.testing.assert_allclose(untraced[0, 0], a @ b.T, rtol=1e-10)


def test_reference_rejects_an_unknown_implementation():
    with pytest.raises(TypeError, match="Implementation"):
        na.empirical_ntk(lambda p, x: x, {}, jnp.zeros((2, 2)), implementation="jacobian")


def test_eq4_against_neural_tangents_with_the_stated_constants():
    with jax.enable_x64(True):
        d = 7
        x = na.unit_rows(jax.random.key(0), 9, d)
        _, _, kernel_fn = na.relu_mlp(2, 512, 1.0, None)
        ntk, nngp = na.analytic_ntk(kernel_fn, x, x), na.analytic_ntk(kernel_fn, x, x, "nngp")
        u = x @ x.T
        np.testing.assert_allclose(d * (ntk - nngp), na.h_ntk(u), atol=1e-7)  # eq. 4 = hidden-layer term
        np.testing.assert_allclose(d * ntk, na.relu_ntk_two_layer(x, x), atol=1e-7)
        # eq. 4 written out in numpy
        un = np.clip(np.asarray(u), -1, 1)
        np.testing.assert_allclose(na.h_ntk(u), un * (np.pi - np.arccos(un)) / (2 * np.pi), rtol=1e-12)
        # Off the sphere, the norm-aware form is what neural-tangents computes.
        z = 1.7 * jax.random.normal(jax.random.key(1), (6, d), jnp.float64)
        dz = d * (na.analytic_ntk(kernel_fn, z, z) - na.analytic_ntk(kernel_fn, z, z, "nngp"))
        np.testing.assert_allclose(dz, na.relu_ntk_hidden(z, z), rtol=1e-6, atol=1e-7)


def test_exact_gamma_is_k_minus_k_anchored():
    with jax.enable_x64(True):
        d, r = 6, 0.3
        c = r * jnp.eye(d)[0]
        # x_i = c + w_i with w_i orthogonal to c and |w_i|^2 = 1 - |c|^2: the x_i and the anchored
        # inputs [c, x_i - c] are all unit norm, the setting of eq. 6.
        w = na.unit_rows(jax.random.key(0), 8, d - 1)
        x = c[None, :] + jnp.sqrt(1 - r**2) * jnp.concatenate([jnp.zeros((8, 1)), w], axis=1)
        ax = na.anchor_vectors(x, c)
        np.testing.assert_allclose(jnp.linalg.norm(x, axis=1), 1.0, rtol=1e-12)
        np.testing.assert_allclose(jnp.linalg.norm(ax, axis=1), 1.0, rtol=1e-12)
        np.testing.assert_allclose(na.anchored_dot(x, x, c), ax @ ax.T, rtol=1e-12, atol=1e-14)
        _, _, kernel_fn = na.relu_mlp(2, 512, 1.0, None)

        def hidden(a, b):  # eq. 4 from neural-tangents, with the constants of _theory
            return a.shape[1] * (na.analytic_ntk(kernel_fn, a, b) - na.analytic_ntk(kernel_fn, a, b, "nngp"))

        want = hidden(x, x) - na.anchored_ntks(hidden, x, x, [c])[0]  # K - K_anc
        u = x @ x.T
        got = na.gamma_exact(u, u - na.anchored_dot(x, x, c))  # h(u) - h(u - c^T v)
        np.testing.assert_allclose(got, want, atol=1e-7)


def test_taylor_gamma_is_first_order():
    with jax.enable_x64(True):
        u = jnp.asarray([-0.6, -0.1, 0.2, 0.7])
        errors = []
        for delta in (1e-2, 1e-3, 1e-4):
            g, gt = na.gamma_exact(u, delta), na.gamma_taylor(u, delta)
            errors.append(float(jnp.max(jnp.abs(gt - g))))
            # First order: Gamma ~ delta * h'(u) with h'(u) = (pi - arccos u) / (2 pi) + u / (2 pi sqrt(1 - u^2)).
            hp = jax.vmap(jax.grad(na.h_ntk))(u)
            np.testing.assert_allclose(gt / delta, hp, rtol=50 * delta)
        assert errors[0] / errors[1] > 50 and errors[1] / errors[2] > 50  # error O(delta^2)
        r = na.taylor_error(jax.random.key(0), np.asarray([0.01, 0.1, 0.3]), n=16, d=8)
        assert np.all(np.diff(r["median_relative_error"]) > 0) and r["valid_fraction"][0] == 1.0


def test_spectrum_is_real_nonnegative_sorted():
    with jax.enable_x64(True):
        x = jnp.asarray(figures.regular_grid(12, 2))
        _, _, kernel_fn = na.relu_mlp(3, 512, 1.5, 0.1)
        for k in (na.analytic_ntk(kernel_fn, x, x),
                  *na.anchored_ntks(lambda a, b: na.analytic_ntk(kernel_fn, a, b), x, x, x[:2])):
            ev = na.spectrum(k)
            assert ev.dtype == jnp.float64 and ev.shape == (144,)
            assert np.all(np.diff(np.asarray(ev)) <= 1e-12) and float(ev[-1]) > -1e-9 * float(ev[0])
            np.testing.assert_allclose(np.sum(ev), np.trace(k), rtol=1e-10)
    # Anchoring with c = 0 gives [0, x]: the vanilla kernel of x / sqrt(2) (NTK parameterization
    # divides the first layer by sqrt(fan_in), and the fan-in doubles).
    with jax.enable_x64(True):
        x = jnp.asarray(figures.regular_grid(16, 1))
        _, _, kernel_fn = na.relu_mlp(3, 512, 1.5, 0.1)
        van = na.analytic_ntk(kernel_fn, x / jnp.sqrt(2.0), x / jnp.sqrt(2.0))
        anc = na.anchored_ntks(lambda a, b: na.analytic_ntk(kernel_fn, a, b), x, x, jnp.zeros((1, 1)))[0]
        np.testing.assert_allclose(van, anc, rtol=1e-10)
    with pytest.raises(ValueError, match="square"):
        na.spectrum(jnp.zeros((2, 3)))


def test_figures_run_end_to_end(tmp_path):
    out = tmp_path / "ntk"
    assert cli.main(["spectrum", "--out", str(out), "--points-1d", "16", "--points-2d", "4", "--anchors", "2"]) == 0
    assert cli.main(["gamma", "--out", str(out), "--dim", "4"]) == 0
    r = figures.toy2d(out, jax.random.key(0), samples=60, anchors=3, grid=16, epochs=20)
    assert r["tau"].shape == (16, 16) and r["kernel_regression"].shape == (3, 16, 16)
    # The anchors' disagreement grows away from the data (Fig. 4 right).
    assert r["eq5_std_by_distance"][-1] > r["eq5_std_by_distance"][0]
    fm = make_fake_fashion_mnist(tmp_path / "fm", n_train=256, n_test=64)
    assert cli.main(["empirical", "--out", str(out), "--n", "6", "--train-size", "128", "--epochs", "1",
                     "--anchors", "2", "--data-dir", str(fm)]) == 0
    for stem in ("ntk_spectrum", "ntk_gamma", "ntk_toy2d", "ntk_empirical_fmnist"):
        for ext in ("png", "npz", "csv"):
            assert (out / f"{stem}.{ext}").exists(), (stem, ext)
    spec = np.load(out / "ntk_empirical_fmnist.npz")
    assert spec["anchored_trained"].shape == (2, 6) and np.all(np.diff(spec["plain_trained"]) <= 1e-6)


def test_bad_arguments_are_refused_before_any_work(tmp_path, capsys):

    key = jax.random.key(0)
    with pytest.raises(ValueError, match="train_size must be an integer >= 64, got 10"):
        figures.empirical(tmp_path, key, train_size=10)  # used to train for 30 s first
    with pytest.raises(ValueError, match="epochs must be an integer >= 1, got 0"):
        figures.toy2d(tmp_path, key, epochs=0)
    with pytest.raises(ValueError, match="points_2d must be an integer >= 2, got 1.5"):
        figures.spectrum(tmp_path, key, points_2d=1.5)
    with pytest.raises(SystemExit):
        cli.main(["empirical", "--epochs", "0", "--out", str(tmp_path)])
    assert "--epochs must be >= 1, got 0" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing written
