"""The figures of paper 000, section 4, each a function that computes the numbers, writes them
(.npz and .csv) and a PNG into `out_dir`, and returns the numbers:

  spectrum     Fig. 4 left: NTK eigenvalues on a regular 1-D / 2-D grid (as in Tancik et al. 2020),
               vanilla versus anchored inputs [c, x - c] for several anchors, log scale
  gamma        eq. 4 against neural-tangents and eq. 6: the Taylor approximation of Gamma versus
               the exact one, as a function of |c|
  toy2d        Fig. 4 right: an MLP trained with and without anchoring on two moons; decision regions
               per anchor, the anchors' disagreement tau (eq. 1) as a heat map, and the kernel-
               regression prediction of eq. 5 with the anchored infinite-width NTK per anchor
  empirical    empirical NTK spectra of small CNNs trained on Fashion-MNIST, plain versus anchored
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from ntk_analysis import _kernels as K  # noqa: E402
from ntk_analysis import _theory as T  # noqa: E402
from oodjax import anchoring  # noqa: E402
from oodjax.models import Model, from_flax  # noqa: E402
from oodjax.training import TrainConfig, train  # noqa: E402
from oodjax.files import write_atomic  # noqa: E402
from oodjax.validation import check_int  # noqa: E402


def _save(out_dir: Path, stem: str, fig: plt.Figure, arrays: dict[str, Any], rows: list[dict[str, Any]]) -> None:
    """The figure's arrays (.npz), table (.csv) and PNG, each written atomically."""
    out_dir.mkdir(parents=True, exist_ok=True)
    npz, table, png = io.BytesIO(), io.StringIO(newline=""), io.BytesIO()
    np.savez(npz, **{k: np.asarray(v) for k, v in arrays.items()})
    writer = csv.DictWriter(table, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    fig.savefig(png, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    write_atomic(out_dir / f"{stem}.npz", npz.getvalue())
    write_atomic(out_dir / f"{stem}.csv", table.getvalue())
    write_atomic(out_dir / f"{stem}.png", png.getvalue())


def _check_counts(**counts: tuple[object, int]) -> None:
    """ValueError naming the first argument that is not an integer >= its minimum (before any work)."""
    for name, (value, low) in counts.items():
        check_int(name, value, low)


def regular_grid(points: int, dim: int) -> np.ndarray:
    """`points` per axis on [0, 1): (points ** dim, dim)."""
    axes = [np.arange(points) / points] * dim
    return np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, dim)


def spectrum(out_dir: Path, key: jax.Array, points_1d: int = 256, points_2d: int = 24, anchors: int = 4,
             depth: int = 4, w_std: float = 1.5, b_std: float = 0.1) -> dict[str, np.ndarray]:
    """Fig. 4 left: eigenvalues of the analytic NTK of a depth-`depth` ReLU MLP on a regular grid,
    for the inputs x (vanilla) and [c, x - c] (anchored) with `anchors` random grid anchors c."""
    _check_counts(points_1d=(points_1d, 2), points_2d=(points_2d, 2), anchors=(anchors, 1), depth=(depth, 2))
    _, _, kernel_fn = K.relu_mlp(depth, 512, w_std, b_std)
    ntk = lambda a, b: K.analytic_ntk(kernel_fn, a, b)  # noqa: E731
    arrays, rows = {}, []
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for ax, (dim, points) in zip(axes, ((1, points_1d), (2, points_2d))):
        x = jnp.asarray(regular_grid(points, dim))
        cs = x[jax.random.choice(jax.random.fold_in(key, dim), x.shape[0], (anchors,), replace=False)]
        vanilla = np.asarray(K.spectrum(ntk(x, x)))
        anchored = np.stack([np.asarray(K.spectrum(k)) for k in K.anchored_ntks(ntk, x, x, cs)])
        arrays.update({f"vanilla_{dim}d": vanilla, f"anchored_{dim}d": anchored, f"anchors_{dim}d": np.asarray(cs)})
        idx = np.arange(1, vanilla.size + 1)
        ax.loglog(idx, np.maximum(vanilla / vanilla[0], 1e-16), "k", lw=2, label="vanilla")
        for i, ev in enumerate(anchored):
            ax.loglog(idx, np.maximum(ev / ev[0], 1e-16), lw=1, alpha=0.8,
                      label=f"anchored, c = {np.round(np.asarray(cs[i]), 2).tolist()}")
        ax.set(title=f"{dim}-D grid, {x.shape[0]} points", xlabel="eigenvalue index",
               ylabel="eigenvalue / largest")
        ax.legend(fontsize=6)
        for i in range(vanilla.size):
            rows.append({"grid": f"{dim}d", "index": i, "vanilla": vanilla[i],
                         **{f"anchor_{k}": anchored[k, i] for k in range(anchors)}})
    fig.suptitle(f"NTK spectra, ReLU MLP depth {depth} (analytic, neural-tangents)")
    _save(out_dir, "ntk_spectrum", fig, arrays, rows)
    return arrays


def gamma(out_dir: Path, key: jax.Array, n: int = 64, d: int = 16,
          anchor_norms: Sequence[float] = tuple(np.logspace(-3, 0, 13))) -> dict[str, np.ndarray]:
    """Eq. 4 against neural-tangents (constants in `_theory`), and the Taylor error of eq. 6 vs |c|."""
    _check_counts(n=(n, 2), d=(d, 2))
    x = T.unit_rows(key, n, d)
    _, _, kernel_fn = K.relu_mlp(2, 512, 1.0, None)
    nt_hidden = d * (K.analytic_ntk(kernel_fn, x, x) - K.analytic_ntk(kernel_fn, x, x, "nngp"))
    eq4_error = float(jnp.max(jnp.abs(nt_hidden - T.h_ntk(x @ x.T))))
    err = T.taylor_error(jax.random.fold_in(key, 1), np.asarray(anchor_norms), n=n, d=d)
    fig, ax = plt.subplots(figsize=(5, 3.8))
    ax.loglog(err["anchor_norm"], err["median_relative_error"], "o-", label="median relative error")
    ax.loglog(err["anchor_norm"], err["median_abs_error"], "s--", label="median absolute error")
    ax.set(xlabel="|c| (anchor norm)", ylabel="|Gamma_taylor - Gamma|",
           title=f"eq. 6: first-order Gamma vs exact (d = {d})")
    ax.legend(fontsize=7)
    rows = [{k: float(v[i]) for k, v in err.items()} for i in range(len(err["anchor_norm"]))]
    _save(out_dir, "ntk_gamma", fig, {**err, "eq4_max_abs_error_vs_neural_tangents": eq4_error}, rows)
    return {**err, "eq4_max_abs_error": np.asarray(eq4_error)}


class _MLP(nn.Module):
    width: int = 128
    classes: int = 2

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> tuple[jax.Array, jax.Array]:
        del train
        h = nn.relu(nn.Dense(self.width)(x))
        h = nn.relu(nn.Dense(self.width)(h))
        return nn.Dense(self.classes, name="head")(h), h


def toy_mlp(in_dim: int, width: int = 128) -> Model:
    """A 2-hidden-layer ReLU MLP on (in_dim,) inputs as an oodjax Model."""
    return from_flax(_MLP(width), (in_dim,))


def toy2d(out_dir: Path, key: jax.Array, samples: int = 200, anchors: int = 5, grid: int = 80, epochs: int = 60,
          workdir: Path | None = None) -> dict[str, np.ndarray]:
    """Fig. 4 right on two moons: decision regions of an anchored MLP for several anchors, its tau
    (eq. 1: summed std of sigmoid(logits) over the anchors) over the plane, the plain MLP, and eq. 5's
    infinite-width kernel regression with the anchored NTK per anchor (and its std across anchors)."""
    _check_counts(samples=(samples, 2), anchors=(anchors, 2), grid=(grid, 2), epochs=(epochs, 1))
    from sklearn.datasets import make_moons

    x, y = make_moons(samples, noise=0.1, random_state=0)
    x = ((x - x.mean(0)) / x.std(0)).astype(np.float32)
    y = y.astype(np.int32)
    cfg = TrainConfig(epochs=epochs, batch_size=40, learning_rate=0.05, weight_decay=1e-4, log_every=10**6)
    k_plain, k_anc, k_draw = jax.random.split(key, 3)
    wd = (lambda tag: None) if workdir is None else (lambda tag: workdir / tag)  # noqa: E731
    plain_model = toy_mlp(2)
    plain, _ = train(plain_model, x, y, cfg, key=k_plain, workdir=wd("toy2d_plain"), progress=False)
    net = toy_mlp(4)
    anchored_vars, _ = train(net, x, y, cfg, key=k_anc, workdir=wd("toy2d_anchored"), progress=False,
                             input_transform=anchoring.AnchoredTraining(corruptions=()))
    lo, hi = x.min(0) - 1.0, x.max(0) + 1.0
    gx, gy = np.meshgrid(np.linspace(lo[0], hi[0], grid), np.linspace(lo[1], hi[1], grid))
    plane = jnp.asarray(np.stack([gx.ravel(), gy.ravel()], -1), jnp.float32)
    cs = jnp.asarray(x)[jax.random.choice(k_draw, samples, (anchors,), replace=False)]
    per_anchor = jnp.stack([net.apply(anchored_vars, K.anchor_vectors(plane, c))[0] for c in cs], axis=1)  # (G, K, 2)
    tau = np.asarray(anchoring.anchor_temperature(per_anchor)).reshape(grid, grid)
    p_anchor = np.asarray(jax.nn.softmax(per_anchor, -1)[..., 1]).T.reshape(anchors, grid, grid)
    p_plain = np.asarray(jax.nn.softmax(plain_model.apply(plain, plane)[0], -1)[:, 1]).reshape(grid, grid)

    # Eq. 5 with the infinite-width NTK (the mean over initializations, f_0 = 0), targets +-1.
    _, _, kernel_fn = K.relu_mlp(3, 512, 1.5, 0.1)
    xs, targets = jnp.asarray(x), jnp.asarray(2.0 * y - 1.0)[:, None]
    kr = []
    for c in tqdm(cs, desc="eq. 5 kernel regression", leave=False):
        ax_, ap = K.anchor_vectors(xs, c), K.anchor_vectors(plane, c)
        kxx = K.analytic_ntk(kernel_fn, ax_, ax_)
        kxx = kxx + 1e-4 * jnp.trace(kxx) / samples * jnp.eye(samples)
        kr.append(np.asarray(K.analytic_ntk(kernel_fn, ap, ax_) @ jnp.linalg.solve(kxx, targets))[:, 0])
    kr = np.stack(kr).reshape(anchors, grid, grid)

    fig, axes = plt.subplots(2, anchors + 2, figsize=(2.6 * (anchors + 2), 5.4))
    extent = (lo[0], hi[0], lo[1], hi[1])

    def show(ax, img, title, cmap="RdBu_r", vmin=None, vmax=None, anchor=None):
        im = ax.imshow(img, origin="lower", extent=extent, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
        ax.scatter(x[:, 0], x[:, 1], c=y, s=3, cmap="coolwarm", edgecolors="none")
        if anchor is not None:
            ax.plot(*np.asarray(anchor), "k*", ms=10)
        ax.set_title(title, fontsize=8)
        ax.set_xticks([]), ax.set_yticks([])
        return im

    show(axes[0, 0], p_plain, "plain MLP: p(class 1)", vmin=0, vmax=1)
    for k in range(anchors):
        show(axes[0, k + 1], p_anchor[k], f"anchored, anchor {k + 1}", vmin=0, vmax=1, anchor=cs[k])
    fig.colorbar(show(axes[0, -1], tau, "tau (eq. 1) across anchors", cmap="magma"), ax=axes[0, -1])
    show(axes[1, 0], np.asarray(kr).mean(0), "eq. 5 mean over anchors", vmin=-1.5, vmax=1.5)
    for k in range(anchors):
        show(axes[1, k + 1], kr[k], f"eq. 5, anchored NTK {k + 1}", vmin=-1.5, vmax=1.5, anchor=cs[k])
    fig.colorbar(show(axes[1, -1], kr.std(0), "eq. 5 std across anchors", cmap="magma"), ax=axes[1, -1])
    fig.suptitle("Two moons: anchoring gives a different hypothesis per anchor; they disagree away from the data")

    dist = np.min(np.linalg.norm(np.asarray(plane)[:, None] - x[None], axis=-1), axis=1).reshape(grid, grid)
    bins = np.quantile(dist, np.linspace(0, 1, 6))
    rows = []
    for i in range(5):
        m = (dist >= bins[i]) & (dist <= bins[i + 1])
        rows.append({"distance_to_data_from": bins[i], "distance_to_data_to": bins[i + 1], "mean_tau": tau[m].mean(),
                     "mean_eq5_std": kr.std(0)[m].mean()})
    arrays = {"x": x, "y": y, "grid_x": gx, "grid_y": gy, "anchors": np.asarray(cs), "tau": tau, "p_anchor": p_anchor,
              "p_plain": p_plain, "kernel_regression": kr, "distance_to_data": dist}
    _save(out_dir, "ntk_toy2d", fig, arrays, rows)
    return {**arrays, "tau_by_distance": np.asarray([r["mean_tau"] for r in rows]),
            "eq5_std_by_distance": np.asarray([r["mean_eq5_std"] for r in rows])}


def empirical(out_dir: Path, key: jax.Array, n: int = 48, train_size: int = 5000, epochs: int = 2, anchors: int = 3,
              implementation: K.Implementation = K.Implementation.JACOBIAN_CONTRACTION, data_dir: str | None = None,
              workdir: Path | None = None) -> dict[str, np.ndarray]:
    """Empirical NTK spectra (traced over the 10 logits) of the small CNN on n Fashion-MNIST test
    images: at initialization and trained, plain (x) versus anchored ([c, x - c] for `anchors`
    training anchors c), each trained on `train_size` images for `epochs` epochs."""
    _check_counts(n=(n, 2), train_size=(train_size, 64), epochs=(epochs, 1), anchors=(anchors, 1))
    if not isinstance(implementation, K.Implementation):
        raise ValueError(f"implementation must be an ntk_analysis.Implementation, got {implementation!r}")
    from oodjax import data, models
    from oodjax.data import normalize

    x_tr, y_tr = data.load_fashion_mnist("train", data_dir)
    x_te, _ = data.load_fashion_mnist("test", data_dir)
    k_sub, k_plain, k_anc, k_test, k_draw = jax.random.split(key, 5)
    sub = np.sort(np.asarray(jax.random.permutation(k_sub, x_tr.shape[0]))[:train_size])
    xs, ys = normalize(x_tr[sub]), y_tr[sub]
    xt = jnp.asarray(normalize(x_te[np.sort(np.asarray(jax.random.permutation(k_test, x_te.shape[0]))[:n])]))
    cfg = TrainConfig(epochs=epochs, batch_size=64, learning_rate=0.05)
    wd = (lambda tag: None) if workdir is None else (lambda tag: workdir / tag)  # noqa: E731
    plain_net = models.get("small_cnn", num_classes=10, in_channels=1, image_size=28)
    anc_net = models.get("small_cnn", num_classes=10, in_channels=2, image_size=28)
    plain, _ = train(plain_net, xs, ys, cfg, key=k_plain, workdir=wd("fmnist_plain"), progress=True)
    anchored, _ = train(anc_net, xs, ys, cfg, key=k_anc, workdir=wd("fmnist_anchored"), progress=True,
                        input_transform=anchoring.AnchoredTraining())
    cs = jnp.asarray(xs)[jax.random.choice(k_draw, xs.shape[0], (anchors,), replace=False)]

    def spec(model, variables, inputs):
        k = K.empirical_ntk(K.flax_apply_fn(model, variables), variables["params"], inputs,
                            implementation=implementation)
        return np.asarray(K.spectrum(k))

    arrays = {
        "plain_init": spec(plain_net, plain_net.init(k_plain), xt),
        "plain_trained": spec(plain_net, plain, xt),
        "anchored_init": np.stack([spec(anc_net, anc_net.init(k_anc), anchoring.anchor_input(xt, c)) for c in cs]),
        "anchored_trained": np.stack([spec(anc_net, anchored, anchoring.anchor_input(xt, c)) for c in cs]),
    }
    fig, ax = plt.subplots(figsize=(5.5, 4))
    idx = np.arange(1, n + 1)
    ax.semilogy(idx, arrays["plain_init"], "k:", label="plain, init")
    ax.semilogy(idx, arrays["plain_trained"], "k", lw=2, label="plain, trained")
    for i in range(anchors):
        ax.semilogy(idx, arrays["anchored_init"][i], ":", color=f"C{i}", label=f"anchored, init, anchor {i + 1}")
        ax.semilogy(idx, arrays["anchored_trained"][i], color=f"C{i}", label=f"anchored, trained, anchor {i + 1}")
    ax.set(xlabel="eigenvalue index", ylabel="eigenvalue", title=f"Empirical NTK, small CNN, {n} Fashion-MNIST images")
    ax.legend(fontsize=6)
    rows = [{"index": i, "plain_init": arrays["plain_init"][i], "plain_trained": arrays["plain_trained"][i],
             **{f"anchored_trained_{k}": arrays["anchored_trained"][k, i] for k in range(anchors)}} for i in range(n)]
    _save(out_dir, "ntk_empirical_fmnist", fig, arrays, rows)
    return arrays
