"""The hardening battery (issue 17): bad inputs and faults a hostile but fair user would try, each
with the outcome it must have, and a count of what happened.

    python scripts/hardening_battery.py [--only CATEGORY] [-v]

Every case expects either an error or a correct result:
  clear     an error was expected and came as ValueError / TypeError / KeyError / FileNotFoundError /
            CheckpointError (or an argparse exit) raised by oodjax's own code (ntk_analysis,
            experiments) with its message: the problem named (and the fix, where there is one)
  raw       an error was expected but came from inside numpy / jax / orbax / tensorflow / Pillow
  silent    an error was expected and none came (a wrong result passed on)
  ok        a correct result was expected and checked (a fallback, a clipped metric, a kept value)
  broken    a correct result was expected and an error or a wrong value came instead
Exit status 1 if any case is raw, silent or broken. The cases are small (seconds each) and run
offline on the CPU; about a minute in all.
"""

from __future__ import annotations

import argparse
import inspect
import os
import shutil
import sys
import tempfile
import traceback
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

OURS = ("/oodjax/", "/ntk_analysis/", "/experiments/", "argparse.py")
CLEAR_TYPES = (ValueError, TypeError, KeyError, FileNotFoundError, SystemExit)
CASES: list[tuple[str, str, Callable[[], object], str]] = []  # (category, case, function, "error" | "ok")


def case(category: str, name: str, expect: str = "error"):
    def wrap(fn):
        CASES.append((category, name, fn, expect))
        return fn
    return wrap


def outcome(fn: Callable[[], object], expect: str) -> tuple[str, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = fn()
        except CLEAR_TYPES + (Exception,) as e:  # noqa: B014
            frame = traceback.extract_tb(e.__traceback__)[-1].filename if e.__traceback__ else ""
            own = any(o in frame for o in OURS) or isinstance(e, SystemExit)
            msg = f"{type(e).__name__}: {str(e).splitlines()[0][:150] if str(e) else ''}"
            if expect == "ok":
                return "broken", msg
            return ("clear" if own and isinstance(e, CLEAR_TYPES) else "raw"), msg + ("" if own else f" [{frame}]")
    if expect == "error":
        return "silent", f"returned {str(result)[:80]}"
    return ("ok", "") if result is not False else ("broken", "wrong value")


# --- numbers ----------------------------------------------------------------------------------

def _scorer_sweep() -> None:
    from oodjax import scores
    from oodjax.scores import _registry

    # The zeros that mean something: keep every activation, no input step, no penalty, no cut-off.
    meaningful = {"ash_b.percentile", "ash_p.percentile", "ash_s.percentile", "scale.percentile", "dice.sparsity",
                  "adascale_a.p_min", "adascale_l.p_min", "adascale_a.lam", "adascale_l.lam", "grodin_g.epsilon",
                  "grodin_sg.epsilon", "odin.epsilon", "nci.alpha", "mahalanobis.rcond", "rmds.rcond",
                  "weiper_kld.lambda1", "weiper_kld.lambda2"}
    unclipped = {"rg.k", "rg_additive.k", "uv.k"}  # a clip threshold of inf clips nothing (paper 002's k = inf)
    for name in scores.names():
        for param, p in inspect.signature(_registry._REGISTRY.get(name)).parameters.items():
            if isinstance(p.default, bool) or not isinstance(p.default, (int, float)):
                continue
            for v in [float("nan"), float("inf"), -1] + ([2.5, 0] if isinstance(p.default, int) else [0.0]):
                expect = "ok" if (v == 0 and f"{name}.{param}" in meaningful) or (
                    v == float("inf") and f"{name}.{param}" in unclipped) else "error"
                case("scorer hyper-parameters", f"{name}({param}={v!r})", expect)(
                    lambda n=name, k=param, x=v: scores.get(n, **{k: x}) and None)


def _numbers() -> None:
    from oodjax import gradients, scores
    from oodjax.training import TrainConfig

    z = jnp.ones((2, 3))
    x = jnp.ones((2, 4, 4, 1))
    net = lambda v: jnp.mean(v, axis=(1, 2)) @ jnp.ones((1, 3))  # noqa: E731
    for t in (float("inf"), jnp.float32(0.0), np.float64(np.nan), -1.0, jnp.asarray(-2.0)):
        case("numbers", f"msp(temperature={t!r})")(lambda t=t: scores.msp(z, temperature=t))
    for e in (np.float32(-0.1), jnp.asarray(-0.1), float("nan"), float("inf")):
        case("numbers", f"odin(epsilon={e!r})")(lambda e=e: scores.odin(net, x, 2.0, e))
    for s in ((0.0,), (float("nan"),), (-1.0,), ()):
        case("numbers", f"odin(std={s!r})")(lambda s=s: scores.odin(net, x, 2.0, 0.001, s))
    for c in (0, -1, 2.5):
        case("numbers", f"per_sample_grad_norms(chunk_size={c!r})")(lambda c=c: gradients.per_sample_grad_norms(
            lambda v, xb: net(xb) * v["w"], lambda zz: jnp.sum(zz), {"w": jnp.ones(())}, x, chunk_size=c))
    case("numbers", "per_sample_grad_norms(vector-valued loss)")(lambda: gradients.per_sample_grad_norms(
        lambda v, xb: net(xb) * v["w"], lambda zz: zz, {"w": jnp.ones(())}, x, method="ghost"))
    for kw in ({"epochs": 0}, {"batch_size": 2.5}, {"learning_rate": float("nan")}, {"checkpoint_every": -1},
               {"log_every": 0}, {"weight_decay": -1.0}):
        case("numbers", f"TrainConfig({kw})")(lambda kw=kw: TrainConfig(**kw))
    case("numbers", "msp(temperature=0.5) is computed", "ok")(
        lambda: bool(np.allclose(scores.msp(z, temperature=0.5), 1 / 3)))


# --- metrics ----------------------------------------------------------------------------------

def _metrics() -> None:
    from oodjax import metrics

    good = np.linspace(0, 1, 20)
    for label, a in (("NaN", np.r_[good, np.nan]), ("inf", np.r_[good, np.inf]), ("-inf", np.r_[-np.inf, good]),
                     ("empty", np.zeros(0)), ("2-D", good.reshape(4, 5)), ("bool", good > 0.5),
                     ("strings", np.array(["a", "b"]))):
        case("metrics", f"ood_metrics(id = {label})")(lambda a=a: metrics.ood_metrics(a, good))
        case("metrics", f"ood_metrics(ood = {label})")(lambda a=a: metrics.ood_metrics(good, a))
    rng = np.random.default_rng(0)

    def separated():
        for n in range(1, 300, 7):
            m = metrics.ood_metrics(rng.uniform(1, 2, n), rng.uniform(-2, -1, 3 * n + 1))
            if not all(0.0 <= v <= 1.0 for v in m.values()) or m["aupr_in"] != 1.0 or m["auroc"] != 1.0:
                return False
        return True

    case("metrics", "perfect separation stays in [0, 1] (AUPR-In was 1.0000000000000002)", "ok")(separated)
    case("metrics", "bootstrap(n=1)")(lambda: metrics.bootstrap(good, good, key=jax.random.key(0), n=1))


# --- fits on degenerate data ------------------------------------------------------------------

def _fits() -> None:
    from oodjax import scores
    from oodjax.types import FitData, Head, ModelOutputs

    rng = np.random.default_rng(0)
    h = jnp.asarray(rng.normal(size=(30, 6)), jnp.float32)
    y = jnp.arange(30) % 3
    nan_h = h.at[7, 2].set(jnp.nan)
    head = Head(jnp.asarray(rng.normal(size=(6, 4)), jnp.float32), jnp.zeros(4))
    case("fits", "knn fit with a NaN row")(lambda: scores.get("knn", k=3).fit(FitData(train=ModelOutputs(features=nan_h))))
    case("fits", "mahalanobis fit with a NaN row")(lambda: scores.fit_mahalanobis(nan_h, y, 3))
    case("fits", "rmds fit with a NaN row")(lambda: scores.fit_rmds(nan_h, y, 3))
    case("fits", "vim fit with a NaN row")(lambda: scores.fit_vim(nan_h, nan_h @ head.kernel, head, dim=3))
    case("fits", "mahalanobis on constant features")(lambda: scores.fit_mahalanobis(jnp.ones((30, 6)), y, 3))
    case("fits", "mahalanobis with an empty class")(lambda: scores.fit_mahalanobis(h, y % 2, 3))
    flat = jnp.asarray(np.c_[rng.normal(size=(30, 2)), np.zeros((30, 4))], jnp.float32)
    case("fits", "vim with zero residual")(lambda: scores.fit_vim(flat, flat @ head.kernel, Head(head.kernel, head.bias * 0), dim=2))
    maha = scores.fit_mahalanobis(h, y, 3)
    case("fits", "mahalanobis on features of another dimension")(lambda: scores.mahalanobis(h[:, :5], maha))
    case("fits", "knn on features of another dimension")(lambda: scores.knn(h[:, :5], h, 3))
    case("fits", "knn with k larger than the bank")(lambda: scores.knn(h, h, 31))
    vim = scores.fit_vim(h, h @ head.kernel, head, dim=3)
    case("fits", "vim on features of another dimension")(lambda: scores.vim(jnp.ones((2, 4)), jnp.ones((2, 7)), vim))
    case("fits", "mahalanobis labels out of range")(lambda: scores.fit_mahalanobis(h, y + 1, 3))
    case("fits", "vim dim >= D")(lambda: scores.fit_vim(h, h @ head.kernel, head, dim=6))


# --- files and loaders ------------------------------------------------------------------------

def _loaders(tmp: Path) -> None:
    from PIL import Image

    from oodjax import data
    from oodjax.data import fashion_mnist as fm

    folder = tmp / "imgs"
    folder.mkdir()
    Image.fromarray(np.full((6, 6), 32768, np.uint16)).save(folder / "a16.png")
    Image.fromarray(np.full((6, 6), 0.25, np.float32)).save(folder / "b.tif")
    (folder / "looks_like.png").mkdir()
    case("loaders", "16-bit PNG and float TIFF keep their values", "ok")(
        lambda: bool(np.allclose(data.load_image_folder(folder, 4, 1)[:, 0, 0, 0], [32768 / 65535, 0.25], atol=1e-5)))
    bad = tmp / "bad"
    bad.mkdir()
    Image.fromarray(np.full((6, 6), 3.0, np.float32)).save(bad / "f.tif")
    case("loaders", "float TIFF outside [0, 1]")(lambda: data.load_image_folder(bad, 4, 1))
    trunc = tmp / "trunc"
    trunc.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(trunc / "a.jpg")
    raw = (trunc / "a.jpg").read_bytes()
    (trunc / "b.jpg").write_bytes(raw[: len(raw) // 2])
    (trunc / "c.png").write_bytes(b"not an image")
    case("loaders", "truncated JPEG")(lambda: data.FolderImages(trunc, 8)[0:2])
    case("loaders", "a .png that is not an image")(lambda: data.FolderImages(trunc, 8)[2:3])
    for c in (0, 2, 4):
        case("loaders", f"FolderImages(channels={c})")(lambda c=c: data.FolderImages(folder, 8, channels=c))
        case("loaders", f"load_image_folder(channels={c})")(lambda c=c: data.load_image_folder(folder, 8, channels=c))
    case("loaders", "FolderImages(image_size=0)")(lambda: data.FolderImages(folder, 0))
    case("loaders", "an empty folder")(lambda: data.FolderImages(tmp / "bad" / "..", 8) and data.FolderImages(
        Path(tempfile.mkdtemp(dir=tmp)), 8))
    case("loaders", "a missing folder")(lambda: data.FolderImages(tmp / "nowhere", 8))
    case("loaders", "a folder named like an image is skipped", "ok")(lambda: len(data.FolderImages(folder, 4)) == 2)
    from tests.fake_data import make_fake_fashion_mnist

    d = make_fake_fashion_mnist(tmp / "fm", n_train=20, n_test=10)
    gz = d / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:200])
    (d / "t10k-images-idx3-ubyte.gz").write_bytes(b"plain text, not gzip")
    case("loaders", "truncated .gz IDX")(lambda: fm.load_fashion_mnist("train", d))
    case("loaders", "a .gz IDX that is not gzip")(lambda: fm.load_fashion_mnist("test", d))
    d2 = make_fake_fashion_mnist(tmp / "fm2", n_train=20, n_test=10)
    labels = fm.read_idx(d2 / "train-labels-idx1-ubyte.gz").copy()
    labels[3] = 12
    fm.write_idx(d2 / "train-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    case("loaders", "IDX labels out of range")(lambda: fm.load_fashion_mnist("train", d2))
    case("loaders", "IDX split name")(lambda: fm.load_fashion_mnist("validation", d2))
    d3 = make_fake_fashion_mnist(tmp / "fm3", n_train=20, n_test=10)
    (d3 / "train-labels-idx1-ubyte.gz").unlink()
    case("loaders", "a missing IDX file")(lambda: fm.load_fashion_mnist("train", d3))
    case("loaders", "tfds: unknown dataset")(lambda: data.check_prepared("no_such_dataset", "test", str(tmp)))
    case("loaders", "tfds: a data_dir that does not exist")(lambda: data.check_prepared("cifar10", "test", str(tmp / "x")))
    case("loaders", "pixels outside [0, 1]")(lambda: data.check_images("x", np.full((2, 4, 4, 1), 255.0, np.float32)))
    case("loaders", "images of rank 3")(lambda: data.check_images("x", np.zeros((2, 4, 4), np.float32)))


# --- evaluation -------------------------------------------------------------------------------

def _evaluation() -> None:
    from oodjax import data, scores
    from oodjax.data import ArraySource
    from oodjax.evaluate import EvalData, evaluate
    from oodjax.models import get

    model = get("small_cnn", num_classes=3, in_channels=1, image_size=12, widths=(4,), feature_dim=8)
    variables = model.init(jax.random.key(0))
    rng = np.random.default_rng(0)
    img = lambda n: rng.uniform(0, 1, (n, 12, 12, 1)).astype(np.float32)  # noqa: E731
    d = EvalData(fit_images=img(30), fit_labels=rng.integers(0, 3, 30), id_val=ArraySource(img(8)),
                 id_test=ArraySource(img(10)), ood_sets=[data.ood_set_from_arrays("noise", img(10))],
                 normalize=lambda x: (x - 0.5) / 0.25, input_std=(0.25,))
    spec = {"knn": scores.get("knn", k=3)}
    run = lambda **kw: evaluate(model, kw.pop("variables", variables), spec, d._replace(**kw),  # noqa: E731
                                key=jax.random.key(0), progress=False)
    broken = jax.tree.map(lambda a: a, variables)
    broken["params"]["head"]["bias"] = broken["params"]["head"]["bias"].at[0].set(jnp.nan)
    case("evaluation", "NaN weights")(lambda: run(variables=broken))
    case("evaluation", "an empty OOD set")(lambda: run(ood_sets=[data.ood_set_from_arrays("e", img(0))]))
    case("evaluation", "an empty ID test set")(lambda: run(id_test=ArraySource(img(0))))
    case("evaluation", "input_std 0")(lambda: run(input_std=(0.0,)))
    case("evaluation", "fit labels out of range")(lambda: run(fit_labels=np.full(30, 5)))
    case("evaluation", "two OOD sets of one name")(lambda: run(ood_sets=[data.ood_set_from_arrays("a", img(4))] * 2))
    case("evaluation", "NaN pixels")(lambda: run(fit_images=np.full((30, 12, 12, 1), np.nan, np.float32)))
    case("evaluation", "images of another size")(lambda: run(id_test=ArraySource(np.zeros((4, 10, 10, 1), np.float32))))
    case("evaluation", "a scorer whose needs the model lacks")(lambda: evaluate(
        model, variables, {"amp": scores.get("amp")}, d, key=jax.random.key(0), progress=False))
    case("evaluation", "NAC-UE layers the model does not have")(lambda: evaluate(
        model, variables, {"nac": scores.get("nac_ue", layers="cifar10")}, d, key=jax.random.key(0), progress=False))
    case("evaluation", "a clean run", "ok")(lambda: all(0 <= r["auroc"] <= 1 for r in run().records))


# --- checkpoints and runs ---------------------------------------------------------------------

def _runs(tmp: Path) -> None:
    import subprocess

    from oodjax.files import RunLock
    from oodjax.models import small_cnn
    from oodjax.training import TrainConfig, train

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 96).astype(np.int32)
    x = rng.normal(size=(96, 12, 12, 1)).astype(np.float32) + y[:, None, None, None]
    net = lambda widths=(8, 16): small_cnn(3, image_size=12, widths=widths, feature_dim=16)  # noqa: E731
    cfg = TrainConfig(epochs=2, batch_size=16, learning_rate=0.05, checkpoint_every=4, log_every=2)
    base = tmp / "run"
    want, _ = train(net(), x, y, cfg, key=jax.random.key(0), workdir=base, progress=False)

    def same(a, b):
        return all(np.array_equal(np.asarray(u), np.asarray(v))
                   for u, v in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)))

    def damaged(how, steps=("12",)):
        copy = tmp / f"run_{how}_{'_'.join(steps)}"
        shutil.copytree(base, copy)
        for s in steps:
            f = max((p for p in (copy / "checkpoints" / s).rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
            if how == "flip":
                b = bytearray(f.read_bytes())
                b[len(b) // 3: len(b) // 3 + 64] = bytes(v ^ 0xFF for v in b[len(b) // 3: len(b) // 3 + 64])
                f.write_bytes(bytes(b))
            elif how == "truncate":
                f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
            else:
                f.unlink()
        return copy

    for how in ("flip", "truncate", "delete"):
        case("checkpoints", f"newest checkpoint: {how} -> the older one, bit-identical end", "ok")(
            lambda how=how: same(want, train(net(), x, y, cfg, key=jax.random.key(0), workdir=damaged(how),
                                             progress=False)[0]))
        case("checkpoints", f"every checkpoint: {how}")(lambda how=how: train(
            net(), x, y, cfg, key=jax.random.key(0), workdir=damaged(how, ("8", "12")), progress=False))
    def second_run():
        with RunLock(tmp / "locked", "training run"):  # the first, live run
            return train(net(), x, y, cfg, key=jax.random.key(0), workdir=tmp / "locked", progress=False)

    case("runs", "a second live run on one workdir")(second_run)
    code = ("import os, signal, sys; from oodjax.files import RunLock; RunLock(sys.argv[1]).acquire(); "
            "os.kill(os.getpid(), signal.SIGKILL)")
    subprocess.run([sys.executable, "-c", code, str(tmp / "stale")], check=False,
                   env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    case("runs", "a killed run's stale lock is taken over", "ok")(lambda: train(
        net(), x, y, TrainConfig(epochs=1, batch_size=16), key=jax.random.key(0), workdir=tmp / "stale",
        progress=False) is not None)
    case("runs", "permuted labels in a workdir")(lambda: train(
        net(), x, y[rng.permutation(96)], cfg, key=jax.random.key(0), workdir=base, progress=False))
    case("runs", "another architecture in a workdir")(lambda: train(
        net((8, 32)), x, y, cfg, key=jax.random.key(0), workdir=base, progress=False))
    (tmp / "a_file").write_text("")
    case("runs", "an unwritable workdir")(lambda: train(
        net(), x, y, cfg, key=jax.random.key(0), workdir=tmp / "a_file" / "w", progress=False))
    case("runs", "images and labels of different lengths")(lambda: train(net(), x, y[:50], cfg, key=jax.random.key(0)))
    case("runs", "labels beyond the model's classes")(lambda: train(net(), x, y + 3, cfg, key=jax.random.key(0)))


def _ntk(tmp: Path) -> None:
    from ntk_analysis import __main__ as cli
    from ntk_analysis import figures

    key = jax.random.key(0)
    case("ntk_analysis", "empirical(train_size=10)")(lambda: figures.empirical(tmp, key, train_size=10))
    case("ntk_analysis", "toy2d(epochs=0)")(lambda: figures.toy2d(tmp, key, epochs=0))
    case("ntk_analysis", "spectrum(points_2d=1.5)")(lambda: figures.spectrum(tmp, key, points_2d=1.5))
    case("ntk_analysis", "gamma(d=1)")(lambda: figures.gamma(tmp, key, d=1))
    case("ntk_analysis", "CLI --epochs 0")(lambda: cli.main(["empirical", "--epochs", "0", "--out", str(tmp)]))
    case("ntk_analysis", "CLI unknown figure")(lambda: cli.main(["spectra", "--out", str(tmp)]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=None, help="run one category")
    p.add_argument("-v", "--verbose", action="store_true", help="print every case, not only the failures")
    a = p.parse_args()
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        _scorer_sweep()
        _numbers()
        _metrics()
        _fits()
        _loaders(tmp)
        _evaluation()
        _runs(tmp)
        _ntk(tmp)
        counts: Counter = Counter()
        by_cat: dict[str, Counter] = {}
        for category, name, fn, expect in CASES:
            if a.only and category != a.only:
                continue
            got, msg = outcome(fn, expect)
            counts[got] += 1
            by_cat.setdefault(category, Counter())[got] += 1
            if a.verbose or got in ("raw", "silent", "broken"):
                print(f"[{got:6}] {category}: {name}  {msg}", flush=True)
    print("\n| category | cases | clear error | ok | raw | silent | broken |\n|---|---|---|---|---|---|---|")
    for cat, c in [*by_cat.items(), ("all", counts)]:
        print(f"| {cat} | {sum(c.values())} | {c['clear']} | {c['ok']} | {c['raw']} | {c['silent']} | {c['broken']} |")
    return 1 if counts["raw"] or counts["silent"] or counts["broken"] else 0


if __name__ == "__main__":
    sys.exit(main())
