"""All-weight per-sample gradient norms against one training step, per plan, measured in one run.

    python -m experiments.benchmarks.ghost_plan_bench                         # ResNet-20, batch 256, CPU
    python -m experiments.benchmarks.ghost_plan_bench --model resnet50 --image-size 224 --plan-only
    python -m experiments.benchmarks.ghost_plan_bench --model wrn40_2 --memory-only   # compile, no timing

Prints the norm-trick plan per tapped layer (`gradients.ghost_plan`: kind, P positions, K inputs
per position, C outputs, method, MFLOP and KiB per sample), then for each variant the time of
GRODIN's all-weight squared norms (no epsilon step) over one training step (value_and_grad of the
mean loss on the same batch), and the peak temporary memory of both (XLA's memory analysis; of
one chunk's call where chunks are dispatched from Python):
  jit, lax.map    the plan (fewest flops per layer) inside one jit, chunks of --chunk in XLA's loop
  jit, one chunk  the same on the whole batch at once (no loop)
  eager           called outside jit: chunks of --chunk dispatched from Python, one call each
  eager + budget  the chunk from --memory-budget bytes (`gradients.budget_chunk`: the plan's
                  estimate checked against the compiled chunk's memory; filter where patches would crowd it)
  filter/unfold/ghost  every conv forced to one method, eager, chunk --chunk
  vmap            jax.vmap(jax.grad) per chunk in one jit, the reference path
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import optax

from experiments.benchmarks.gradient_bench import temp_bytes, timed
from oodjax import gradients, models, scores


VARIANTS = ("jit-map", "jit-one", "eager", "budget", "filter", "unfold", "ghost", "vmap")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="resnet20")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--chunk", type=int, default=64)
    p.add_argument("--memory-budget", type=int, default=256 * 2**20, help="bytes, for the 'auto + budget' variant")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--plan-only", action="store_true", help="print the plan (shapes only, no compute)")
    p.add_argument("--memory-only", action="store_true",
                   help="compile only: each variant's temporaries, no timing (the vmap path takes minutes on big models)")
    p.add_argument("--only", default=None, help="comma-separated variants to run (of: jit-map, jit-one, eager, "
                                                "budget, filter, unfold, ghost, vmap; default all)")
    a = p.parse_args(argv)
    stem = {"stem": "imagenet"} if a.image_size >= 128 and a.model.startswith("resnet") and a.model != "resnet20" else {}
    channels = 1 if a.model == "small_cnn" else 3
    classes = 1000 if a.image_size >= 128 else 10
    m = models.get(a.model, num_classes=classes, in_channels=channels, image_size=a.image_size, **stem)
    apply = gradients.logits_fn_of(m.apply)
    shape = (a.batch, a.image_size, a.image_size, channels)
    keep = set(a.only.split(",")) if a.only else set(VARIANTS)
    if keep - set(VARIANTS):  # before any compilation
        raise SystemExit(f"unknown --only variants {sorted(keep - set(VARIANTS))}; choose from {list(VARIANTS)}")
    dev = jax.devices()[0]
    print(f"== {a.model}, batch {a.batch}, {a.image_size}x{a.image_size}x{channels}, {dev.platform} ({dev.device_kind})")

    v_abs = jax.eval_shape(m.init, jax.random.key(0))
    plan, _, rest = gradients.ghost_plan(apply, v_abs, jax.ShapeDtypeStruct(shape, jnp.float32))  # shapes only
    print("\n| layer | kind | P | K | C | method | MFLOP / sample | KiB / sample |\n|---|---|---|---|---|---|---|---|")
    for q in plan:
        print(f"| {q.layer} | {q.kind} | {q.p} | {q.k} | {q.c} | {q.method} | {q.flops / 1e6:.2f} | {q.bytes / 1024:.0f} |")
    counts = {mm: sum(q.method == mm for q in plan) for mm in sorted({q.method for q in plan})}
    print(f"\nmethods: {counts}; total {sum(q.flops for q in plan) / 1e6:.1f} MFLOP / sample; "
          f"parameters left to vmap: {list(rest)}")
    if a.plan_only:
        return

    v = m.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), shape)
    t1 = ({"temperature": jnp.asarray(1.0)},)

    def step(v, x):
        def loss(p):
            return optax.softmax_cross_entropy_with_integer_labels(m.apply({**v, "params": p}, x)[0],
                                                                   jnp.zeros(x.shape[0], jnp.int32)).mean()
        return jax.value_and_grad(loss)(v["params"])

    t_step = float("nan") if a.memory_only else timed(jax.jit(step), v, x, repeats=a.repeats)[1]
    mem_step = temp_bytes(step, v, x)
    timing = "not timed (--memory-only)" if a.memory_only else f"{t_step * 1e3:.1f} ms"
    print(f"\none training step: {timing}, temp {'n/a' if mem_step is None else f'{mem_step / 2**20:.0f}'} MiB\n"
          "\n| variant | norms / train step | ms | temp MiB | temp / train step |\n|---|---|---|---|---|")
    convs = [q.layer for q in plan if q.kind == "conv" and q.p > 1]
    budget_chunk = (gradients.budget_chunk(apply, scores.grodin_loss, v, x, a.memory_budget, shared=t1)
                    if "budget" in keep else None)
    variants = {  # name: (label, jit the whole call?, keyword arguments, the batch XLA's memory analysis sees)
        "jit-map": (f"jit, lax.map, chunk {a.chunk}", True, dict(method="ghost", chunk_size=a.chunk), a.batch),
        "jit-one": ("jit, one chunk", True, dict(method="ghost", chunk_size=a.batch), a.batch),
        "eager": (f"eager, chunk {a.chunk}", False, dict(method="ghost", chunk_size=a.chunk), a.chunk),
        "budget": (f"eager + budget {a.memory_budget / 2**20:g} MiB (chunk {budget_chunk})", False,
                   dict(method="ghost", memory_budget=a.memory_budget), budget_chunk),
        **{mm: (f"eager, all convs {mm}, chunk {a.chunk}", False,
                dict(method="ghost", chunk_size=a.chunk, methods={c: mm for c in convs}), a.chunk)
           for mm in ("filter", "unfold", "ghost")},
        "vmap": (f"vmap, jit, chunk {a.chunk}", True, dict(method="vmap", chunk_size=a.chunk), a.batch)}
    for name, (label, jitted, kw, seen) in variants.items():
        if name not in keep:
            continue
        def f(v, x, kw=kw):
            return gradients.per_sample_grad_norms(apply, scores.grodin_loss, v, x, shared=t1, selector="all",
                                                   ord="sq", **kw)
        t = float("nan") if a.memory_only else timed(jax.jit(f) if jitted else f, v, x, repeats=a.repeats)[1]
        mem = temp_bytes(f, v, x[:seen])
        ratio, ms = ("-", "-") if a.memory_only else (f"{t / t_step:.2f}", f"{t * 1e3:.1f}")
        mib = "n/a" if mem is None else f"{mem / 2**20:.0f}"  # (a backend without a memory analysis)
        rel = "n/a" if mem is None or mem_step is None else f"{mem / max(mem_step, 1):.2f}"
        print(f"| {label} | {ratio} | {ms} | {mib} | {rel} |",
              flush=True)


if __name__ == "__main__":
    main()
