"""Paper 002's ablations on the embedded suite (far OOD sets), post hoc on the embedded model:

  Table 2: U x V combinations (U: GradNorm's sum|p - 1/C|, energy, 1; V: ||h||_1, sum min(h, k), 1)
  Table 3: RG's clipping threshold k in {0.1, ..., 5, inf}
  Table 4: RG's temperature T in {0.5, ..., 64}
  Table 5: additive RG (eq. 12) with alpha = c * alpha_s, c in {0.3, ..., 1.2}

It reuses the checkpoint of `experiments/configs/embedded.py` (run `make demo` first, or it trains).
    python -m experiments.run experiments/configs/rg_ablation.py
"""

import dataclasses

from experiments.configs.embedded import get_config as embedded_config
from oodjax.experiment import ModelSpec


def ablation_scorers() -> dict:
    scorers = {}
    for u in ("gradnorm", "energy", "one"):
        for v in ("l1", "clipped", "one"):
            if (u, v) != ("one", "one"):
                scorers[f"T2 U={u} V={v}"] = ("uv", {"u": u, "v": v})
    for k in (0.1, 0.3, 0.5, 0.7, 1.0, 2.0, 3.0, 5.0, float("inf")):
        scorers[f"T3 RG k={k:g}"] = ("rg", {"k": k})
    for t in (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0):
        scorers[f"T4 RG T={t:g}"] = ("rg", {"temperature": t})
    for c in (0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2):
        scorers[f"T5 RG+ alpha={c:g}as"] = ("rg_additive", {"alpha_scale": c})
    return scorers


def get_config(variant: str = "default"):
    base = embedded_config(variant)
    return dataclasses.replace(
        base, name=f"rg_ablation{'' if variant == 'default' else '_' + variant}",
        train_dir=f"{base.results_dir}/{base.name}",  # the embedded run's all_classes model
        data=dataclasses.replace(base.data, resize_sets=False, corruptions=()),
        models=(ModelSpec("all_classes", ablation_scorers()),), views=("summary", "table"),
    )
