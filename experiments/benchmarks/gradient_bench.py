"""Speed of the gradient scores, as ratios measured in one run on the same model and batch.

    python -m experiments.benchmarks.gradient_bench                       # small CNN, ResNet-20 (CPU)
    python -m experiments.benchmarks.gradient_bench --models resnet18,resnet50 --image-size 224 --batch 128

Prints, per model (compile time reported separately; times are medians of --repeats runs):
  1. GradNorm closed form (forward + U x V) / one forward pass                (goal <= 1.1)
  2. per-sample loop at batch 1 (the official GradNorm) / oodjax batched GradNorm
  3. GRODIN all-weight per-sample norms / one batched training step (value_and_grad of the mean
     loss), without and with the epsilon step, for the norm-trick and the vmap path (goal <= 1.5)
  4. peak temporary memory of the vmap path versus the norm-trick path (XLA's memory analysis)
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp
import optax

from oodjax import models, scores
from oodjax.gradients import logits_fn_of, per_sample_grad_norms


def timed(fn, *args, repeats: int) -> tuple[float, float]:
    """(first call incl. compile, median steady-state seconds)."""
    t = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(time.perf_counter() - t)
    return first, statistics.median(times)


def temp_bytes(fn, *args) -> int | None:
    try:
        return jax.jit(fn).lower(*args).compile().memory_analysis().temp_size_in_bytes
    except Exception:  # not every backend reports it
        return None


def bench(name: str, batch: int, image_size: int, repeats: int, chunk: int, loop_n: int) -> None:
    stem = {"stem": "imagenet"} if image_size >= 128 and name in ("resnet18", "resnet34", "resnet50") else {}
    classes = 1000 if image_size >= 128 else 10
    channels = 1 if name == "small_cnn" else 3
    m = models.get(name, num_classes=classes, in_channels=channels, image_size=image_size, **stem)
    v = m.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (batch, image_size, image_size, channels))
    apply = logits_fn_of(m.apply)
    t1 = ({"temperature": jnp.asarray(1.0)},)  # the losses' non-differentiated hyper-parameters
    n_params = sum(p.size for p in jax.tree_util.tree_leaves(v["params"]))
    print(f"\n== {name}: {n_params / 1e6:.2f}M parameters, batch {batch}, {image_size}x{image_size}x{channels}, "
          f"{jax.devices()[0].platform} ({jax.devices()[0].device_kind}), jax {jax.__version__}")

    forward = jax.jit(lambda v, x: m.apply(v, x)[0])
    closed = jax.jit(lambda v, x: scores.gradnorm(*m.apply(v, x)))
    c_fwd, t_fwd = timed(forward, v, x, repeats=repeats)
    c_gn, t_gn = timed(closed, v, x, repeats=repeats)
    print(f"1. GradNorm closed form / forward:            {t_gn / t_fwd:7.2f}   ({t_gn * 1e3:.1f} / {t_fwd * 1e3:.1f} ms; "
          f"compile {c_gn:.1f} s / {c_fwd:.1f} s)")

    # The official GradNorm: batch size 1, one backward per sample, L1 norm of the head kernel grad.
    one = jax.jit(jax.grad(lambda p, xi: scores.gradnorm_loss(m.apply({**v, "params": p}, xi)[0][0], t1[0])))

    def loop(v, x):
        return [jnp.sum(jnp.abs(one(v["params"], x[i : i + 1])["head"]["kernel"])) for i in range(x.shape[0])]

    xs = x[:loop_n]
    c_loop, t_loop = timed(loop, v, xs, repeats=max(1, repeats // 3))
    t_loop *= batch / loop_n  # extrapolated to the whole batch (the loop is linear in it)
    head = ("params/head/kernel",)
    vmap_head = jax.jit(lambda v, x: per_sample_grad_norms(apply, scores.gradnorm_loss, v, x, shared=t1, selector=head,
                                                            ord="l1", method="vmap", chunk_size=chunk))
    c_vh, t_vh = timed(vmap_head, v, x, repeats=repeats)
    print(f"2. per-sample loop (batch 1) / closed form:    {t_loop / t_gn:7.1f}   (loop {t_loop * 1e3:.0f} ms for {batch}, "
          f"measured on {loop_n})")
    print(f"   per-sample loop (batch 1) / vmap autodiff:  {t_loop / t_vh:7.1f}   (vmap {t_vh * 1e3:.1f} ms; compile {c_vh:.1f} s)")

    def train_step(v, x):
        def loss(p):
            return optax.softmax_cross_entropy_with_integer_labels(m.apply({**v, "params": p}, x)[0],
                                                                   jnp.zeros(x.shape[0], jnp.int32)).mean()
        return jax.value_and_grad(loss)(v["params"])

    c_step, t_step = timed(jax.jit(train_step), v, x, repeats=repeats)
    std = jnp.ones((channels,))

    def grodin(method, eps):
        def f(v, x):
            if eps:
                x = x - eps * scores.odin_direction(jax.tree_util.Partial(apply, v), x, jnp.asarray(1.0), std)
            return per_sample_grad_norms(apply, scores.grodin_loss, v, x, shared=t1, selector="all", ord="sq",
                                         method=method, chunk_size=chunk)
        return jax.jit(f)

    print(f"   one batched training step: {t_step * 1e3:.1f} ms (compile {c_step:.1f} s)")
    for method in ("ghost", "vmap"):
        for eps in (0.0, 0.002):
            c, t = timed(grodin(method, eps), v, x, repeats=repeats)
            step = "with eps step   " if eps else "without eps step"
            print(f"3. GRODIN all weights, {method:5s}, {step} / train step: {t / t_step:6.2f}   "
                  f"({t * 1e3:.1f} ms; compile {c:.1f} s)")
    mem = {k: temp_bytes(grodin(k, 0.0), v, x) for k in ("ghost", "vmap")}
    if None not in mem.values():
        print(f"4. peak temp memory, vmap / norm trick: {mem['vmap'] / 2**20:.0f} MiB / {mem['ghost'] / 2**20:.0f} MiB "
              f"= {mem['vmap'] / max(mem['ghost'], 1):.2f} (chunk {chunk})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="small_cnn,resnet20")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--image-size", type=int, default=None, help="default: 28 for small_cnn, else 32")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=64, help="per-sample chunk of the vmap/norm-trick paths")
    parser.add_argument("--loop-n", type=int, default=32, help="samples actually run by the batch-1 loop")
    args = parser.parse_args()
    for name in args.models.split(","):
        size = args.image_size or (28 if name == "small_cnn" else 32)
        bench(name, args.batch, size, args.repeats, args.chunk, min(args.loop_n, args.batch))


if __name__ == "__main__":
    main()
