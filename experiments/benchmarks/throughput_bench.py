"""Images per second of an MSP-only pass and of GRODIN, in float32 and bfloat16, in one run.

    python -m experiments.benchmarks.throughput_bench            # ResNet-50, 224 px, batch 128 (for a GPU)
    python -m experiments.benchmarks.throughput_bench --image-size 32 --batch 8 --repeats 2   # a CPU smoke run

MSP: one forward pass and max softmax. GRODIN: the squared norms of every sample's gradient of the
predicted-class NLL over all weights (norm trick, `gradients.per_sample_grad_norms(method="ghost")`),
at T = 1 without the epsilon step. bfloat16: the parameters and the images cast to bfloat16 (the
network computes in it; the scores come back in float32). Prints a markdown table: images/s from the
median of --repeats timed calls after a compiling one, and the compile seconds.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp

from experiments.benchmarks.gradient_bench import timed
from oodjax import models, scores
from oodjax.gradients import logits_fn_of, per_sample_grad_norms


def rate(fn, *args, batch: int, repeats: int) -> tuple[float, float]:
    """(compile seconds, images per second: batch / median of `repeats` warm calls)."""
    first, median = timed(fn, *args, repeats=repeats)
    return first, batch / median


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet50")
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--chunk", type=int, default=32, help="GRODIN's per-sample chunk")
    p.add_argument("--dtypes", default="float32,bfloat16")
    a = p.parse_args(argv)
    dtypes = a.dtypes.split(",")
    if not set(dtypes) <= {"float32", "bfloat16"} or a.batch < 1 or a.repeats < 1:
        p.error("--dtypes takes float32 and/or bfloat16; --batch and --repeats must be >= 1")
    stem = {"stem": "imagenet"} if a.image_size >= 128 and a.model.startswith("resnet") else {}
    m = models.get(a.model, num_classes=1000 if a.image_size >= 128 else 10, in_channels=3,
                   image_size=a.image_size, **stem)
    v32 = m.init(jax.random.key(0))
    x32 = jax.random.uniform(jax.random.key(1), (a.batch, a.image_size, a.image_size, 3))
    apply = logits_fn_of(m.apply)
    t1 = ({"temperature": jnp.asarray(1.0)},)
    msp = jax.jit(lambda v, x: scores.msp(m.apply(v, x)[0].astype(jnp.float32)))
    grodin = jax.jit(lambda v, x: per_sample_grad_norms(apply, scores.grodin_loss, v, x, shared=t1, selector="all",
                                                         ord="sq", method="ghost", chunk_size=a.chunk))
    dev = jax.devices()[0]
    print(f"{a.model}, batch {a.batch}, {a.image_size}x{a.image_size}x3, {dev.platform} ({dev.device_kind}), "
          f"jax {jax.__version__}, {a.repeats} timed calls each")
    print("| dtype | MSP images/s | GRODIN images/s | GRODIN / MSP time | compile MSP / GRODIN (s) |")
    print("|---|---|---|---|---|")
    for name in dtypes:
        dtype = jnp.dtype(name)
        v = jax.tree.map(lambda w: w.astype(dtype) if jnp.issubdtype(w.dtype, jnp.floating) else w, v32)
        x = x32.astype(dtype)
        c_msp, r_msp = rate(msp, v, x, batch=a.batch, repeats=a.repeats)
        c_gr, r_gr = rate(grodin, v, x, batch=a.batch, repeats=a.repeats)
        print(f"| {name} | {r_msp:.0f} | {r_gr:.1f} | {r_msp / r_gr:.1f} | {c_msp:.1f} / {c_gr:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
