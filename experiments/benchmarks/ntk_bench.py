"""Speed of the empirical NTK implementations, relative to JACOBIAN_CONTRACTION, in one run.

    python -m experiments.benchmarks.ntk_bench                      # MLP and small CNN, N in 16..128
    python -m experiments.benchmarks.ntk_bench --sizes 64,128,256 --repeats 5

For each network (a 784-512-512-10 MLP and oodjax's small CNN on 28x28x1, both Flax, at init) and
each N, the NTK over N x N inputs traced over the 10 logits is timed (median of --repeats after
compilation) for every neural-tangents implementation (and the jacrev reference), and printed as
time / time(JACOBIAN_CONTRACTION). Failures (e.g. out of memory) are reported, not raised.
"""

from __future__ import annotations

import argparse
import statistics
import time

import flax.linen as nn
import jax

import ntk_analysis
from ntk_analysis import Implementation
from oodjax import models


class MLP(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        h = x.reshape(x.shape[0], -1)
        for _ in range(2):
            h = nn.relu(nn.Dense(512)(h))
        return nn.Dense(10, name="head")(h), h


def _median(fn, repeats: int) -> float:
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="16,32,64,128")
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")]
    nets = {"mlp 784-512-512-10": models.from_flax(MLP(), (28, 28, 1)),
            "small_cnn": models.get("small_cnn", num_classes=10, in_channels=1, image_size=28)}
    dev = jax.devices()[0]
    print(f"{dev.platform} ({dev.device_kind}), jax {jax.__version__}; time / time(JACOBIAN_CONTRACTION)")
    for name, model in nets.items():
        variables = model.init(jax.random.key(0))
        f = ntk_analysis.flax_apply_fn(model, variables)
        n_params = sum(x.size for x in jax.tree_util.tree_leaves(variables["params"]))
        print(f"\n== {name} ({n_params / 1e3:.0f}k parameters)")
        print("   N | " + " | ".join(f"{i.name:>22}" for i in Implementation) + " | JC seconds")
        for n in sizes:
            x = jax.random.normal(jax.random.key(n), (n, 28, 28, 1))
            times = {}
            for impl in Implementation:
                fn = jax.jit(lambda x, impl=impl: ntk_analysis.empirical_ntk(f, variables["params"], x,
                                                                               implementation=impl))
                try:
                    times[impl] = _median(lambda: fn(x), a.repeats)
                except Exception as e:  # noqa: BLE001 - report and go on (OOM on big N)
                    times[impl] = None
                    print(f"   ({impl.name} failed at N = {n}: {type(e).__name__})")
            base = times[Implementation.JACOBIAN_CONTRACTION]
            cells = [f"{t / base:22.2f}" if t is not None and base else f"{'-':>22}" for t in times.values()]
            print(f"{n:4d} | " + " | ".join(cells) + f" | {base:.4f}")


if __name__ == "__main__":
    main()
