"""Training-time detectors and uncertainty baselines side by side (papers 001, 003, 004).

A `Method` is a model variant (head, dropout, ensemble, MC-dropout), a training objective
(`training.objectives`), where training starts (from scratch or fine-tuning another method's
model) and the scorers read off the result. `MethodsConfig` runs several of them on the data of an
EmbeddedConfig or a BenchmarkConfig and writes one comparison table (e.g. paper 001's Table 1 and
Table 2). Every model trains through the shared loop in its own resumable workdir.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from oodjax import data, metrics, models
from oodjax.data import ArraySource
from oodjax.evaluate import EvalResult, build_scorers, evaluate
from oodjax.experiment import BenchmarkConfig, Data, EmbeddedConfig, OODSpec, ScorerSpec, _train_dir, base_data, merged_scores
from oodjax.plots import write_plots
from oodjax.scores import ENSEMBLE_MEASURES
from oodjax.training import BIN, BINC, VIB, CrossEntropy, EnergyOE, Objective, TrainConfig, train


@dataclasses.dataclass(frozen=True)
class Method:
    """One training-time method: how its model is built and trained, and what scores it.

    scorers: {label: (registered scorer, hyper-parameters)} read off the trained model.
    head / head_kwargs: a head variant of models.HEADS ("binc", "vib", "viby") or None.
    objective: the loss. model_kwargs: for the backbone (e.g. {"dropout": 0.3}).
    members: >= 2 trains that many models from different keys, scored as a deep ensemble.
    mc_samples: >= 2 scores the model as MC-dropout with that many dropout masks.
    finetune_from: the name of a method (earlier in the config) whose trained model this one
      starts from, trained with `train` (e.g. energy fine-tuning with outlier exposure).
    outliers: train with the config's auxiliary outlier stream (objectives with outlier exposure).
    train: its TrainConfig (None: the base experiment's).
    """

    scorers: ScorerSpec
    head: str | None = None
    head_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    objective: Objective = CrossEntropy()
    model_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    members: int = 0
    mc_samples: int = 0
    finetune_from: str | None = None
    outliers: bool = False
    train: TrainConfig | None = None

    def __post_init__(self):
        if self.members == 1 or self.members < 0:
            raise ValueError(f"members must be 0 (one model) or >= 2 (an ensemble), got {self.members}")
        if self.mc_samples == 1 or self.mc_samples < 0:
            raise ValueError(f"mc_samples must be 0 or >= 2, got {self.mc_samples}")
        if self.outliers != self.objective.uses_outliers:
            raise ValueError(f"outliers={self.outliers} does not fit the objective {self.objective}")


def survey_methods(odin: Mapping[str, Any] | None = None) -> dict[str, Method]:
    """Paper 001, Table 1: Baseline (MSP), Baseline+T and ODIN (T, eps tuned for FPR95 on each OOD
    validation split) on a softmax model; BIN, BINC, VIB, VIBY-I/II with their objectives and the
    paper's hyper-parameters (zeta 0.05, lambda 0.5, beta 0.005 / 0.01, z = 64)."""
    odin = dict(odin or {})
    return {
        "baseline": Method({"Baseline": ("msp", {}), "Baseline+T": ("odin", {**odin, "epsilons": (0.0,)}),
                            "ODIN": ("odin", odin)}),
        "bin": Method({"BIN": ("bin", {})}, objective=BIN(zeta=0.05)),
        "binc": Method({"BINC": ("binc", {})}, head="binc", head_kwargs={"z": 64}, objective=BINC(zeta=0.05, lam=0.5)),
        "vib": Method({"VIB": ("vib", {})}, head="vib", head_kwargs={"z": 64}, objective=VIB(beta=0.005)),
        "viby": Method({"VIBY-I": ("viby_i", {}), "VIBY-II": ("viby_ii", {})}, head="viby", head_kwargs={"z": 64},
                       objective=VIB(beta=0.01)),
    }


def _ensemble_scorers(prefix: str) -> dict[str, tuple[str, dict]]:
    return {f"{prefix} {name.removeprefix('ens_')}": (name, {}) for name in ENSEMBLE_MEASURES}


def uncertainty_methods(flow_steps: int = 1000, flow_hidden: int = 256, pixel_noise: float = 1.0 / 256,
                        finetune: TrainConfig | None = None,
                        oe: EnergyOE = EnergyOE(), dropout: float = 0.3, members: int = 3, mc_samples: int = 10,
                        odin: Mapping[str, Any] | None = None) -> dict[str, Method]:
    """Papers 003 and 004: MSP, ODIN, energy and RealNVP likelihoods (pixels with checkerboard
    masks; + the OOD term; + cyclic masks; + a bottleneck; embeddings; embeddings + the OOD term)
    on a softmax model; that model fine-tuned with energy-bounded outlier exposure; MC-dropout and
    a deep ensemble with the six uncertainty measures. pixel_noise: dequantization in the units of
    the normalized inputs; odin: ODIN's hyper-parameters (default: the papers' grid)."""
    pixels = {"on": "pixels", "steps": flow_steps, "hidden": flow_hidden, "dequantize": pixel_noise}
    embeds = {"on": "features", "steps": flow_steps, "hidden": flow_hidden}
    ood = {"ood_weight": 1.0}
    return {
        "baseline": Method({
            "MSP": ("msp", {}), "ODIN": ("odin", dict(odin or {})), "Energy": ("energy", {}),
            "Flow pixels": ("flow", pixels), "Flow pixels +OOD": ("flow", {**pixels, **ood}),
            "Flow pixels +OOD cyclic": ("flow", {**pixels, **ood, "mask": "cyclic"}),
            "Flow pixels bottleneck": ("flow", {**pixels, "bottleneck": 16}),
            "Flow embeddings": ("flow", embeds), "Flow embeddings +OOD": ("flow", {**embeds, **ood}),
        }),
        "energy_oe": Method({"Energy OE": ("energy", {}), "MSP OE": ("msp", {})}, objective=oe, outliers=True,
                            finetune_from="baseline", train=finetune),
        "mc_dropout": Method(_ensemble_scorers("MC-dropout"), model_kwargs={"dropout": dropout}, mc_samples=mc_samples),
        "ensemble": Method(_ensemble_scorers("Ensemble"), members=members),
    }


@dataclasses.dataclass(frozen=True)
class MethodsConfig:
    """Methods (in order; `finetune_from` refers to an earlier one) on one experiment's data.

    base: data, backbone, training and evaluation settings (its `scorers` and `amp` are unused).
    ood_sets: the base's test OOD sets to keep (None: all).
    outliers: the auxiliary outlier set of methods with `outliers` and of flows with an OOD term:
      OODSpec("auxiliary_outliers") is the embedded suite's (data.auxiliary_outliers), any other
      OODSpec a tfds dataset or an image folder as in BenchmarkConfig; outlier_size caps it.
    metrics: the table's columns (paper 001: FPR95, Detection Error, AUROC, AUPR-In, AUPR-Out).
    """

    base: EmbeddedConfig | BenchmarkConfig
    methods: Mapping[str, Method]
    name: str = "methods"
    ood_sets: tuple[str, ...] | None = None
    outliers: OODSpec | None = None
    outlier_size: int = 2000
    title: str = "Training-time detectors"
    metrics: tuple[str, ...] = ("fpr95", "detection_error", "auroc", "aupr_in", "aupr_out")
    results_dir: str = "results"

    def __post_init__(self):
        names = list(self.methods)
        for i, (name, m) in enumerate(self.methods.items()):
            if m.finetune_from is not None and m.finetune_from not in names[:i]:
                raise ValueError(f"method {name!r} fine-tunes {m.finetune_from!r}, which is not an earlier method")
            if m.outliers and self.outliers is None:
                raise ValueError(f"method {name!r} trains with outliers: set MethodsConfig.outliers")


def _outliers(config: MethodsConfig, d: Data) -> np.ndarray | None:
    spec = config.outliers
    if spec is None:
        return None
    if spec.name in {s.name for s in d.ood_sets}:
        raise ValueError(f"the outlier set {spec.name!r} is also a test OOD set; drop it from ood_sets")
    base = config.base
    if spec.name == "auxiliary_outliers" and spec.folder is None:
        images = data.auxiliary_outliers(config.outlier_size)
    elif spec.folder is not None:
        images = data.load_image_folder(spec.folder, base.image_size, base.channels, resample=spec.resample)
    else:
        src = data.TfdsSource(spec.name, split=spec.split or "train", data_dir=base.data_dir,
                              image_size=base.image_size, channels=base.channels)
        images = np.concatenate([b for b, _ in zip(src.batches(1000), range(-(-config.outlier_size // 1000)))])
    return images[: config.outlier_size]


def run_methods(config: MethodsConfig) -> dict[str, Any]:
    """Trains each method's model(s) in results_dir/name/train_<method>[_m<i>], evaluates its scorers
    on the kept OOD sets, and writes table.md (rows: OOD set x scorer; the config's metrics),
    accuracy.md (top-1 per method), table.csv, metrics.json and plots/."""
    start = time.time()
    base = config.base
    d, k_run = base_data(base, config.ood_sets)
    outliers = _outliers(config, d)
    (x_tr, y_tr), (x_te, y_te) = d.train_xy, d.test_xy
    h, _, c = x_tr.shape[1:]
    num_classes = int(y_tr.max()) + 1
    x_norm = d.normalize(x_tr)
    out_norm = d.normalize(outliers) if outliers is not None else None
    k_train, k_fit, k_eval, k_mc = jax.random.split(k_run, 4)
    fit_idx = np.sort(np.asarray(jax.random.permutation(k_fit, x_tr.shape[0]))[: base.fit_size])
    train_dir = _train_dir(base) if base.train_dir else Path(config.results_dir) / config.name
    trained: dict[str, Any] = {}
    results: list[tuple[str, EvalResult]] = []
    for name, m in config.methods.items():
        net = models.get(base.model, num_classes=num_classes, in_channels=c, image_size=h, head=m.head,
                         head_kwargs=dict(m.head_kwargs), **{**dict(getattr(base, "model_kwargs", {})), **m.model_kwargs})
        cfg = m.train or base.train
        members = []
        for i in range(max(m.members, 1)):
            key = k_train if i == 0 else jax.random.fold_in(k_train, i)
            workdir = train_dir / (f"train_{name}" + (f"_m{i}" if m.members else ""))
            init = trained[m.finetune_from] if m.finetune_from else None
            members.append(train(net, x_norm, y_tr, cfg, key=key, workdir=workdir, progress=base.progress,
                                 objective=m.objective, outliers=out_norm if m.outliers else None,
                                 init_variables=init).variables)
        variables = members[0]
        trained[name] = variables
        model = net
        if m.members:
            model, variables = models.ensemble(net), models.stack_members(members)
        elif m.mc_samples:
            model = models.mc_dropout(net, m.mc_samples, k_mc)
        res = evaluate(model, variables, build_scorers(m.scorers), fit_images=x_tr[fit_idx], fit_labels=y_tr[fit_idx],
                       id_val=ArraySource(d.val_xy[0]), id_test=ArraySource(x_te), id_test_labels=y_te,
                       ood_sets=d.ood_sets, normalize=d.normalize, input_std=d.input_std, key=k_eval,
                       batch_size=base.batch_size, bootstrap=base.bootstrap, progress=base.progress,
                       outliers=ArraySource(outliers, "outliers") if outliers is not None else None)
        for r in res.records:
            r["method"] = name
        results.append((name, res))
    return write_methods_results(config, results, start)


def write_methods_results(config: MethodsConfig, results: list[tuple[str, EvalResult]], start: float) -> dict[str, Any]:
    out_dir = Path(config.results_dir) / config.name
    out_dir.mkdir(parents=True, exist_ok=True)
    records = [r for _, res in results for r in res.records]
    order = list(dict.fromkeys(r["ood_set"] for r in records))
    by_set = sorted(records, key=lambda r: order.index(r["ood_set"]))
    table = metrics.format_table(by_set, metrics=config.metrics)
    accuracies = {name: res.id_accuracy for name, res in results}
    acc = "| Method | Accuracy (%) |\n|---|---|\n" + "".join(
        f"| {k} | {v * 100:.2f} |\n" for k, v in accuracies.items() if v is not None)
    summary = f"{config.title}\n\n{table}\n{acc}"
    (out_dir / "table.md").write_text(summary)
    (out_dir / "accuracy.md").write_text(acc)
    (out_dir / "table.csv").write_text(metrics.format_table(by_set, fmt="csv", metrics=config.metrics))
    (out_dir / "metrics.json").write_text(json.dumps(records, indent=1))
    seconds = time.time() - start
    (out_dir / "run.json").write_text(json.dumps(
        {"config": dataclasses.asdict(config), "id_accuracies": accuracies, "seconds": seconds}, indent=1, default=str))
    if config.base.plots:
        write_plots(merged_scores(results), records, out_dir / "plots")
    return {"summary": summary, "records": records, "out_dir": out_dir, "seconds": seconds, "id_accuracies": accuracies}


RUNNERS: dict[type, Callable[[Any], dict[str, Any]]] = {MethodsConfig: run_methods}
