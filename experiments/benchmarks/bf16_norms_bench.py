"""The bf16 path of the per-sample gradient norms against float32, measured in one run.

    python -m experiments.benchmarks.bf16_norms_bench [--models small_cnn resnet20 wrn40_2]

For each model: GRODIN's all-weight squared norms (T = 1) of a batch computed with
compute_dtype="bfloat16" and "float32" (`gradients.per_sample_grad_norms`), at initialization and
after a few SGD steps on random labels (weights that have moved), on inputs N(0, 1). Prints the
relative error |bf16 - f32| / f32 of the norms (median, 99th percentile, max), the Spearman rank
correlation (what an AUROC sees), and the time of each (XLA:CPU emulates bf16: its times say
nothing about a GPU's).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
from scipy.stats import spearmanr

from oodjax import gradients, models, scores


def _moved(m, v, x, steps: int = 20):
    """The weights after `steps` of SGD on random labels (BatchNorm statistics as initialized)."""
    y = jax.random.randint(jax.random.key(2), (x.shape[0],), 0, 10)
    opt = optax.sgd(0.05, momentum=0.9)
    params, state = v["params"], opt.init(v["params"])

    @jax.jit
    def step(params, state):
        loss = lambda p: optax.softmax_cross_entropy_with_integer_labels(m.apply({**v, "params": p}, x)[0], y).mean()  # noqa: E731
        g = jax.grad(loss)(params)
        u, state = opt.update(g, state, params)
        return optax.apply_updates(params, u), state

    for _ in range(steps):
        params, state = step(params, state)
    return {**v, "params": params}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="+", default=["small_cnn", "resnet20", "wrn40_2"])
    p.add_argument("--batch", type=int, default=128)
    a = p.parse_args()
    dev = jax.devices()[0]
    print(f"device: {dev.platform} ({dev.device_kind}), batch {a.batch}\n")
    print("| model | weights | rel. error median | p99 | max | Spearman | f32 ms | bf16 ms |\n|---|---|---|---|---|---|---|---|")
    for name in a.models:
        shape = (a.batch, 28, 28, 1) if name == "small_cnn" else (a.batch, 32, 32, 3)
        m = models.get(name, num_classes=10, in_channels=shape[-1], image_size=shape[1])
        apply = gradients.logits_fn_of(m.apply)
        x = jax.random.normal(jax.random.key(1), shape)
        v0 = m.init(jax.random.key(0))
        t1 = ({"temperature": jnp.asarray(1.0)},)
        for label, v in (("init", v0), ("20 SGD steps", _moved(m, v0, x))):
            out, ms = {}, {}
            for dt in ("float32", "bfloat16"):
                f = jax.jit(lambda v, x, dt=dt: gradients.per_sample_grad_norms(
                    apply, scores.grodin_loss, v, x, shared=t1, selector="all", ord="sq", compute_dtype=dt))
                out[dt] = np.asarray(jax.block_until_ready(f(v, x)), np.float64)
                t = time.perf_counter()
                jax.block_until_ready(f(v, x))
                ms[dt] = 1e3 * (time.perf_counter() - t)
            rel = np.abs(out["bfloat16"] - out["float32"]) / out["float32"]
            rho = spearmanr(out["bfloat16"], out["float32"]).statistic
            print(f"| {name} | {label} | {np.median(rel):.2e} | {np.percentile(rel, 99):.2e} | {rel.max():.2e} | "
                  f"{rho:.5f} | {ms['float32']:.0f} | {ms['bfloat16']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
