"""Cost of the leaderboard's post-hoc methods next to the classic ones, measured in one run.

    python -m experiments.benchmarks.leaderboard_bench                         # small CNN, CPU
    python -m experiments.benchmarks.leaderboard_bench --model resnet18 --image-size 32 --fit 5000
    python -m experiments.benchmarks.leaderboard_bench --model resnet18 --image-size 32 \
        --scorers msp,nac_ue,nac_ue@cifar10          # NAC-UE on the official four layers

For each scorer, on one untrained network (the costs do not depend on the weights):
  fit s          seconds of scorer.fit on --fit samples' outputs (host work and compilation included)
  batch / MSP    (forward + score) of one batch of --batch inputs over the same for MSP: what a
                 scorer adds to the evaluation (medians of --repeats runs after compilation)
`name@setting` is a scorer with layers=setting (nac_ue@cifar10: scores.NAC_LAYERS["cifar10"]); a
scorer with a map_loss reads the maps and their gradients (Model.map_grads: a backward pass).
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp

from experiments.benchmarks.amp_bench import median_seconds
from experiments.presets.common import BASELINES, LEADERBOARD
from oodjax import models, scores
from oodjax.types import FitData, ModelOutputs, Predict, restrict



def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="small_cnn")
    p.add_argument("--image-size", type=int, default=28)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--batch", type=int, default=500)
    p.add_argument("--fit", type=int, default=2000, help="fit-set size (and ID validation size)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--scorers", default=",".join(BASELINES + LEADERBOARD))
    a = p.parse_args()
    channels = 1 if a.model == "small_cnn" else 3
    net = models.get(a.model, num_classes=a.classes, in_channels=channels, image_size=a.image_size)
    variables = net.init(jax.random.key(0))
    apply = jax.jit(net.apply)

    def outputs(key: jax.Array, n: int) -> ModelOutputs:
        x = jax.random.normal(key, (n, a.image_size, a.image_size, channels))
        parts = [apply(variables, x[i:i + a.batch]) for i in range(0, n, a.batch)]
        return ModelOutputs(jnp.concatenate([q[0] for q in parts]), jnp.concatenate([q[1] for q in parts]), x)

    predict = Predict(net.apply, variables, (1.0,))
    fit_out, val_out = outputs(jax.random.key(1), a.fit), outputs(jax.random.key(2), a.fit)
    labels = jnp.arange(a.fit) % a.classes  # the costs need every class present, not true labels
    val_labels = labels
    x = jax.random.normal(jax.random.key(3), (a.batch, a.image_size, a.image_size, channels))

    def with_maps(scorer, out: ModelOutputs) -> ModelOutputs:
        """out with the maps reduced by the scorer (with their gradients if it has a map_loss)."""
        if scorer.map_loss is None:
            return out
        grads = jax.jit(lambda v, xb: scorer.map_reduce(net.map_grads(v, xb, scorer.map_loss)[2:]))
        parts = [grads(variables, out.inputs[i:i + a.batch]) for i in range(0, out.inputs.shape[0], a.batch)]
        return jax.block_until_ready(out._replace(maps=jax.tree.map(lambda *q: jnp.concatenate(q), *parts)))

    def batch_cost(scorer, state) -> float:
        def run(v, xb):
            maps = None
            if scorer.map_loss is not None:
                logits, features, *maps_grads = net.map_grads(v, xb, scorer.map_loss)
                maps = scorer.map_reduce(tuple(maps_grads))
            else:
                logits, features = net.apply(v, xb)
            out = restrict(ModelOutputs(logits, features, xb, maps, model=Predict(net.apply, v, (1.0,))), scorer.needs)
            return scorer.score(state, out)

        return median_seconds(jax.jit(run), variables, x, repeats=a.repeats)

    dev = jax.devices()[0]
    print(f"== {a.model} ({a.classes} classes), batch {a.batch}, fit set {a.fit}, {dev.platform} ({dev.device_kind})")
    t_msp = batch_cost(scores.get("msp"), ())
    print(f"forward + MSP: {t_msp * 1e3:.1f} ms a batch\n")
    print("| scorer | needs | fit s | batch / MSP |\n|---|---|---|---|")
    for label in a.scorers.split(","):
        name, _, setting = label.partition("@")
        scorer = scores.get(name, **({"k": 50} if name == "knn" else {}), **({"layers": setting} if setting else {}))
        has = scorer.needs.__contains__
        data = FitData(train=restrict(with_maps(scorer, fit_out), scorer.needs) if has("train") else None,
                       labels=labels if has("labels") else None, head=net.head(variables) if has("head") else None,
                       val=restrict(val_out, scorer.needs) if has("id_val") else None,
                       key=jax.random.key(4) if has("key") else None, model=predict,
                       val_labels=val_labels if has("val_labels") else None)
        t = time.perf_counter()
        state = jax.block_until_ready(scorer.fit(data))
        t_fit = time.perf_counter() - t
        ratio = batch_cost(scorer, state) / t_msp
        needs = ", ".join(sorted(scorer.needs))
        print(f"| {label} | {needs} | {t_fit:.2f} | {ratio:.2f} |", flush=True)


if __name__ == "__main__":
    main()
