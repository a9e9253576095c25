"""Speed of the K-prediction models (deep ensembles, MC-dropout) and of a flow's log-likelihood,
as ratios measured in one run.

    python -m experiments.benchmarks.uncertainty_bench                 # small CNN (CPU)
    python -m experiments.benchmarks.uncertainty_bench --model wrn40_2 --image-size 32 --batch 256

Prints (medians of --repeats runs after compilation):
  ensemble samples (K members unrolled in one jit) / (K x one member's forward)  goal <= 1.1
  MC-dropout samples (one vmap over K masks) / (K x one forward)                  goal <= 1.1
  flow log p(features) / one classifier forward (embedding flow, 6 couplings)
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp

from experiments.benchmarks.amp_bench import median_seconds
from oodjax import flows, models


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="small_cnn")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--ks", default="2,5,10")
    p.add_argument("--repeats", type=int, default=10)
    a = p.parse_args()
    channels = 1 if a.model == "small_cnn" else 3
    net = models.get(a.model, num_classes=10, in_channels=channels, image_size=a.image_size, dropout=0.3)
    x = jax.random.normal(jax.random.key(1), (a.batch, a.image_size, a.image_size, channels))
    variables = net.init(jax.random.key(0))
    t_fwd = median_seconds(jax.jit(net.apply), variables, x, repeats=a.repeats)
    dev = jax.devices()[0]
    print(f"== {a.model}, batch {a.batch}, {dev.platform} ({dev.device_kind}); one forward {t_fwd * 1e3:.1f} ms")
    print(" K | ensemble / (K x forward) | MC-dropout / (K x forward)")
    for k in (int(k) for k in a.ks.split(",")):
        members = models.stack_members([net.init(jax.random.key(i)) for i in range(k)])
        t_e = median_seconds(jax.jit(models.ensemble(net).samples), members, x, repeats=a.repeats)
        t_mc = median_seconds(jax.jit(models.mc_dropout(net, k, jax.random.key(2)).samples), variables, x,
                              repeats=a.repeats)
        print(f"{k:2d} | {t_e / (k * t_fwd):24.2f} | {t_mc / (k * t_fwd):26.2f}")
    features = net.apply(variables, x)[1]
    cfg = flows.FlowConfig()
    flow = flows.make_flow(features.shape[1:], cfg)
    state = flows.FlowState(flow.init(jax.random.key(3), features)["params"], jnp.zeros(features.shape[1]),
                            jnp.ones(features.shape[1]))
    t_flow = median_seconds(jax.jit(lambda s, f: flows.log_prob(f.shape[1:], cfg, s, f)), state, features,
                            repeats=a.repeats)
    print(f"flow log p(features) ({features.shape[1]}-dim, {cfg.num_layers} couplings) / one forward: "
          f"{t_flow / t_fwd:.2f}")


if __name__ == "__main__":
    main()
