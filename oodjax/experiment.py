"""Experiments end to end: train (plain and, for AMP, anchored) models, evaluate scorers on OOD
sets, write tables and plots. Config files in `experiments/configs/` return one of the configs here;
`python -m experiments.run <config>` dispatches on its type (RUNNERS), and the tests call the same
functions.

  EmbeddedConfig     Fashion-MNIST versus the offline suite, on a CPU (`make demo`)
  BenchmarkConfig    a tfds in-distribution dataset versus tfds / image-folder OOD sets (GPU/TPU)
  AMPAblationConfig  paper 000, Table 8: anchor corruptions x number of anchors, FPR95
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from oodjax import anchoring, data, metrics, scores
from oodjax.data import ArraySource, OODSet
from oodjax.evaluate import EvalResult, build_scorers, evaluate
from oodjax.models import get as get_model
from oodjax.plots import plot_severity, plot_severity_densities, write_plots
from oodjax.training import TrainConfig, train

NEAR_SET = "fmnist-heldout-classes"
ScorerSpec = Mapping[str, tuple[str, Mapping[str, Any]]]


def default_scorers() -> dict[str, tuple[str, dict[str, Any]]]:
    """Every registered scorer of a plain model with its paper defaults, plus MSP at T = 1000
    (paper 001). Left out (scores.SPECIAL_SCORERS): the AMP family and the ensemble measures (they
    need K predictions per input: `amp_scorers`, an ensemble, MC-dropout), the training-time
    detectors (`METHODS`) and the flows."""
    spec: dict[str, tuple[str, dict[str, Any]]] = {
        name: (name, {}) for name in scores.names() if name not in scores.SPECIAL_SCORERS
    }
    spec["msp_T1000"] = ("msp", {"temperature": 1000.0})
    return spec


def amp_scorers() -> dict[str, tuple[str, dict[str, Any]]]:
    """The AMP family on an anchored model (paper 000): eq. 2 with tau summed over classes (paper)
    and averaged (official code), the H / (1 + exp(tau)) calibration, the Fig. 5b variants, tau alone,
    and MSP / energy of the marginalized logits H (anchoring without the temperature)."""
    return {
        "amp": ("amp", {}),
        "amp_tau_mean": ("amp", {"reduce": "mean"}),
        "amp_one_plus_exp": ("amp", {"calibration": "one_plus_exp"}),
        "amp_msp": ("amp_msp", {}),
        "amp_energy": ("amp_energy", {}),
        "amp_entropy": ("amp_entropy", {}),
        "amp_tau": ("amp_tau", {}),  # tau summed or averaged over classes ranks alike: one entry
        "anchored_msp": ("msp", {}),
        "anchored_energy": ("energy", {}),
    }


@dataclasses.dataclass(frozen=True)
class AMPConfig:
    """An anchored network of the same backbone, trained and scored next to the plain one.

    training: the anchored-training transform (anchor draw, consistency corruptions, how often).
    num_anchors: K at inference; per_sample: each input draws its own K anchors from a pool of
      `pool_size` training images (official code) instead of all sharing K (paper, Fig. 3).
    train: its TrainConfig; None: the plain model's.
    fit_size, val_size: caps on the fit / ID validation images of its scorers (AMP fits nothing).
    """

    training: anchoring.AnchoredTraining = anchoring.AnchoredTraining()
    num_anchors: int = 5
    per_sample: bool = False
    pool_size: int = 1000
    scorers: ScorerSpec = dataclasses.field(default_factory=amp_scorers)
    train: TrainConfig | None = None
    fit_size: int = 1000
    val_size: int = 1000


@dataclasses.dataclass(frozen=True)
class EmbeddedConfig:
    name: str = "embedded"
    data_dir: str | None = None  # Fashion-MNIST IDX folder; None: $OODJAX_FASHION_MNIST or Debian's
    results_dir: str = "results"
    train_dir: str | None = None  # where train_*/ checkpoints live; None: results_dir/name (share one to reuse it)
    seed: int = 0
    model: str = "small_cnn"
    train_size: int | None = None  # None: all training images but the validation hold-out
    val_size: int = 5000  # ID validation, held out of training (KL-matching, Gram, ODIN tuning)
    test_size: int | None = None  # None: all 10000
    fit_size: int = 10000  # training images the scorers fit on (Mahalanobis, KNN, ViM, ...)
    far_sets: tuple[str, ...] = data.FAR_SETS
    resize_sets: bool = True
    corruptions: tuple[str, ...] = data.COVARIATE_CORRUPTIONS
    corruption_size: int = 2000
    ood_test_size: int | None = None  # cap on each OOD test split (its first n images); None: all
    near_ood_classes: tuple[int, ...] | None = (0, 1, 2, 3, 4)  # None: no near-OOD run
    train: TrainConfig = TrainConfig()
    scorers: ScorerSpec = dataclasses.field(default_factory=default_scorers)
    batch_size: int = 500
    bootstrap: int = 0
    plots: bool = True
    progress: bool = True
    amp: AMPConfig | None = None  # also train an anchored model and score it with the AMP family


@dataclasses.dataclass(frozen=True)
class OODSpec:
    """One OOD set of a benchmark: a tfds dataset (`name` as in data.TFDS_DATASETS, a raw tfds name
    or imagenet_c/<corruption>/<severity>), the images under `folder` (LSUN, iSUN, TinyImageNet,
    SCOOD) resized with Pillow's `resample` filter (paper 000, Table 7), or synthetic noise
    (`name` "gaussian_noise" / "uniform_noise" without a folder; `size` images, paper 001)."""

    name: str
    folder: str | None = None
    kind: str = "far"
    split: str | None = None
    resample: str = "bilinear"
    size: int = 1500


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig:
    """A tfds in-distribution dataset (its train split for training, its test split as ID test)
    against OOD sets, with a registered model; for GPU/TPU runs with a prepared tfds data_dir."""

    name: str
    id_dataset: str = "cifar10"
    ood: tuple[OODSpec, ...] = ()
    data_dir: str | None = None
    results_dir: str = "results"
    train_dir: str | None = None
    seed: int = 0
    model: str = "wrn40_2"
    model_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    image_size: int = 32
    channels: int = 3
    train_size: int | None = None
    val_size: int = 5000
    test_size: int | None = None
    fit_size: int = 10000
    ood_test_size: int | None = None
    ood_val_percent: int = 20
    train: TrainConfig = TrainConfig(epochs=200, batch_size=128, learning_rate=0.1, augment=True,
                                     schedule="step", schedule_kwargs={"milestones": (60, 120, 160), "gamma": 0.2})
    scorers: ScorerSpec = dataclasses.field(default_factory=default_scorers)
    amp: AMPConfig | None = None
    batch_size: int = 500
    bootstrap: int = 0
    plots: bool = True
    progress: bool = True


class Data(NamedTuple):
    """An experiment's images in [0, 1] and how the models see them."""

    train_xy: tuple[np.ndarray, np.ndarray]
    val_xy: tuple[np.ndarray, np.ndarray]  # ID validation, held out of training
    test_xy: tuple[np.ndarray, np.ndarray]
    ood_sets: list[OODSet]
    normalize: Callable[[np.ndarray], np.ndarray]
    input_std: tuple[float, ...]


def normalize(images: np.ndarray) -> np.ndarray:
    """The same normalization for ID and OOD images (paper 000): (x - mean) / std."""
    return ((images - data.MEAN) / data.STD).astype(np.float32)


def channel_normalizer(mean: tuple[float, ...], std: tuple[float, ...]) -> Callable[[np.ndarray], np.ndarray]:
    m, s = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    return lambda images: ((images - m) / s).astype(np.float32)


def _cap(oset: OODSet, n: int | None) -> OODSet:
    if n is None:
        return oset
    if isinstance(oset.test, ArraySource):
        return oset if len(oset.test) <= n else dataclasses.replace(oset, test=ArraySource(oset.test.images[:n], oset.name))
    return dataclasses.replace(oset, test=ArraySource(_stack(oset.test, n), oset.name))


def _stack(source, limit: int | None = None) -> np.ndarray:
    parts, total = [], 0
    for b in source.batches(1000):
        parts.append(b)
        total += b.shape[0]
        if limit is not None and total >= limit:
            break
    return np.concatenate(parts)[:limit]


def _split_train(val_size: int, train_size: int | None, x: np.ndarray, y: np.ndarray, key: jax.Array):
    perm = np.asarray(jax.random.permutation(key, x.shape[0]))
    if val_size >= x.shape[0]:
        raise ValueError(f"val_size {val_size} leaves no training images out of {x.shape[0]}")
    val_idx, train_idx = np.sort(perm[:val_size]), perm[val_size:]
    if train_size is not None:
        train_idx = train_idx[:train_size]
    train_idx = np.sort(train_idx)
    return (x[train_idx], y[train_idx]), (x[val_idx], y[val_idx])


def _test_subset(x: np.ndarray, y: np.ndarray, size: int | None, key: jax.Array):
    if size is None:
        return x, y
    idx = np.sort(np.asarray(jax.random.permutation(key, x.shape[0]))[:size])
    return x[idx], y[idx]


def train_and_evaluate(
    *, model: str, model_kwargs: Mapping[str, Any] | None = None, d: Data, scorers: ScorerSpec, train_cfg: TrainConfig,
    amp: AMPConfig | None, fit_size: int, train_dir: Path, tag: str, key: jax.Array, batch_size: int,
    bootstrap: int, progress: bool,
) -> list[tuple[str, EvalResult]]:
    """Trains the plain model (results tagged `tag`) and, with `amp`, the anchored one
    (`tag`_anchored) in train_dir/train_<tag>[_anchored] (resumable, reused when finished), and
    evaluates each with its scorers. scorers={} skips the plain model."""
    (x_tr, y_tr), (x_te, y_te) = d.train_xy, d.test_xy
    k_train, k_fit, k_eval = jax.random.split(key, 3)
    num_classes = int(y_tr.max()) + 1
    h, w, c = x_tr.shape[1:]
    if h != w:
        raise ValueError(f"models take square images, got {h}x{w}")
    kw = dict(model_kwargs or {})
    x_tr_norm = d.normalize(x_tr)
    fit_idx = np.sort(np.asarray(jax.random.permutation(k_fit, x_tr.shape[0]))[:fit_size])
    common = dict(id_test=ArraySource(x_te), id_test_labels=y_te, ood_sets=d.ood_sets, normalize=d.normalize,
                  input_std=d.input_std, key=k_eval, batch_size=batch_size, bootstrap=bootstrap, progress=progress)
    results = []
    if scorers:
        net = get_model(model, num_classes=num_classes, in_channels=c, image_size=h, **kw)
        # The workdir holds the checkpoints: a killed run resumes, a finished one is reused.
        variables, _ = train(net, x_tr_norm, y_tr, train_cfg, key=k_train, workdir=train_dir / f"train_{tag}",
                             progress=progress)
        results.append((tag, evaluate(net, variables, build_scorers(scorers), fit_images=x_tr[fit_idx],
                                      fit_labels=y_tr[fit_idx], id_val=ArraySource(d.val_xy[0]), **common)))
    if amp is not None:
        net = get_model(model, num_classes=num_classes, in_channels=2 * c, image_size=h, **kw)
        net_vars, _ = train(net, x_tr_norm, y_tr, amp.train or train_cfg, key=k_train,
                            workdir=train_dir / f"train_{tag}_anchored", progress=progress, input_transform=amp.training)
        anchored, variables = anchored_for_inference(net, net_vars, x_tr_norm, amp, jax.random.fold_in(key, 1))
        fit = fit_idx[: amp.fit_size]
        results.append((f"{tag}_anchored", evaluate(
            anchored, variables, build_scorers(amp.scorers), fit_images=x_tr[fit], fit_labels=y_tr[fit],
            id_val=ArraySource(d.val_xy[0][: amp.val_size]), **common)))
    return results


def anchored_for_inference(net, net_vars, train_images: np.ndarray, amp: AMPConfig, key: jax.Array,
                           num_anchors: int | None = None):
    """(anchored Model, variables with anchors drawn from the normalized training images)."""
    k = num_anchors or amp.num_anchors
    k_anchor, k_draw = jax.random.split(key)
    n_pool = amp.pool_size if amp.per_sample else k
    anchors = anchoring.draw_anchors(k_anchor, jnp.asarray(train_images), n_pool)
    model = anchoring.anchored_model(net, num_anchors=k, key=k_draw) if amp.per_sample else anchoring.anchored_model(net)
    return model, anchoring.with_anchors(net_vars, anchors)


def summary_table(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per scorer and kind of shift (far / near / covariate / resize): metrics averaged over the sets."""
    out = []
    for kind in ("far", "near", "covariate", "resize"):
        rows = [r for r in records if r.get("kind") == kind]
        out += metrics.average_records(rows, name=f"{kind} (avg of {len({r['ood_set'] for r in rows})})") if rows else []
    return out


FIG5_SCORERS = ("amp", "amp_tau_mean", "amp_msp", "amp_energy", "amp_entropy", "amp_tau", "msp", "odin", "energy",
                "gram")
TABLE7_SCORERS = ("msp", "energy", "gram", "amp", "amp_tau_mean")


def merged_scores(results: list[tuple[str, EvalResult]]) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """scorer -> OOD set -> (ID scores, OOD scores) over several evaluated models, for the plots."""
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for _, result in results:
        for k, v in result.scores.items():
            out.setdefault(k, {}).update(v)
    return out


def write_results(config: Any, results: list[tuple[str, EvalResult]], start: float) -> dict[str, Any]:
    """Writes results_dir/name/{summary.md, table.md, table.csv, metrics.json (a list of records),
    run.json, plots/} (+ paper-000 views with AMP: table7.md, Fig. 5 plots) and returns
    {'id_accuracy', 'id_accuracies', 'records', 'summary', 'out_dir', 'seconds'}."""
    records, accuracies, all_scores = [], {}, merged_scores(results)
    for tag, result in results:
        records.extend(result.records)
        accuracies[tag] = result.id_accuracy
    out_dir = Path(config.results_dir) / config.name
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = metrics.format_table(summary_table(records), average=False)
    acc = "".join(f"| {tag} | {a * 100:.2f} |\n" for tag, a in accuracies.items() if a is not None)
    (out_dir / "summary.md").write_text(f"| Model | ID test top-1 (%) |\n|---|---|\n{acc}\n{summary}")
    (out_dir / "table.md").write_text(metrics.format_table(records))
    (out_dir / "table.csv").write_text(metrics.format_table(records, fmt="csv"))
    (out_dir / "metrics.json").write_text(json.dumps(records, indent=1))  # id_accuracy in every record
    resize = [r for r in records if r.get("kind") == "resize" and r["scorer"] in TABLE7_SCORERS]
    if resize and config.amp is not None:
        (out_dir / "table7.md").write_text("Paper 000, Table 7: resize-artifact OOD sets\n\n" + metrics.format_grid(resize))
    seconds = time.time() - start
    (out_dir / "run.json").write_text(json.dumps(
        {"config": dataclasses.asdict(config), "id_accuracies": accuracies, "seconds": seconds}, indent=1, default=str))
    if config.plots:
        write_plots(all_scores, records, out_dir / "plots")
        if config.amp is not None:  # Fig. 5 of paper 000: AMP variants and baselines across severities
            fig5 = [k for k in FIG5_SCORERS if k in all_scores]
            plot_severity([r for r in records if r["scorer"] in fig5], out_dir / "plots" / "fig5b_auroc_vs_severity.png")
            for k in fig5[:2]:
                plot_severity_densities(all_scores[k], k, out_dir / "plots" / f"fig5a_densities_{k}.png")
    return {"id_accuracy": next(iter(accuracies.values()), None), "id_accuracies": accuracies, "records": records,
            "summary": summary, "out_dir": out_dir, "seconds": time.time() - start}


def _train_dir(config: Any) -> Path:
    return Path(config.train_dir) if config.train_dir else Path(config.results_dir) / config.name


def embedded_data(config: EmbeddedConfig, k_split: jax.Array, k_test: jax.Array) -> Data:
    """Fashion-MNIST split into train / ID validation / ID test, and the embedded OOD suite."""
    x_all, y_all = data.load_fashion_mnist("train", config.data_dir)
    x_te, y_te = _test_subset(*data.load_fashion_mnist("test", config.data_dir), config.test_size, k_test)
    train_xy, val_xy = _split_train(config.val_size, config.train_size, x_all, y_all, k_split)
    suite = data.embedded_suite(x_te, far=config.far_sets, resize=config.resize_sets,
                                corruptions=config.corruptions, corruption_size=config.corruption_size)
    return Data(train_xy, val_xy, (x_te, y_te), [_cap(s, config.ood_test_size) for s in suite], normalize,
                (float(data.STD),))


def run_embedded(config: EmbeddedConfig) -> dict[str, Any]:
    """The embedded experiment: all 10 classes versus the suite, and (near_ood_classes) the held-out
    classes as near OOD of a model trained on the others; with config.amp, anchored models too."""
    start = time.time()
    key = jax.random.key(config.seed)
    k_split, k_test, k_main, k_near = jax.random.split(key, 4)
    d = embedded_data(config, k_split, k_test)
    common = dict(model=config.model, scorers=config.scorers, train_cfg=config.train, amp=config.amp,
                  fit_size=config.fit_size, train_dir=_train_dir(config), batch_size=config.batch_size,
                  bootstrap=config.bootstrap, progress=config.progress)
    results = train_and_evaluate(d=d, tag="all_classes", key=k_main, **common)
    if config.near_ood_classes is not None:
        cls = config.near_ood_classes
        id_x, id_y, ood_x = data.heldout_classes(*d.test_xy, cls)
        near_set = _cap(data.ood_set_from_arrays(NEAR_SET, ood_x, kind="near"), config.ood_test_size)
        near = d._replace(train_xy=data.heldout_classes(*d.train_xy, cls)[:2],
                          val_xy=data.heldout_classes(*d.val_xy, cls)[:2], test_xy=(id_x, id_y), ood_sets=[near_set])
        results += train_and_evaluate(d=near, tag="heldout", key=k_near, **common)
    return write_results(config, results, start)


def benchmark_data(config: BenchmarkConfig, key: jax.Array) -> Data:
    """The tfds ID dataset (train split -> train + validation hold-out; evaluation split -> ID
    test) and the OOD sets (tfds or image folders), all at image_size x image_size x channels."""
    k_split, k_test = jax.random.split(key)
    src = dict(data_dir=config.data_dir, image_size=config.image_size, channels=config.channels)
    train_src = data.TfdsSource(config.id_dataset, split="train", **src)
    test_src = data.TfdsSource(config.id_dataset, **src)
    x_te, y_te = _test_subset(_stack(test_src), test_src.labels(), config.test_size, k_test)
    train_xy, val_xy = _split_train(config.val_size, config.train_size, _stack(train_src), train_src.labels(), k_split)
    ood_sets = []
    for spec in config.ood:
        if spec.folder is not None or spec.name in data.SYNTHETIC:
            images = (data.load_image_folder(spec.folder, config.image_size, config.channels, resample=spec.resample)
                      if spec.folder is not None else data.SYNTHETIC[spec.name](
                          data.definition_key(spec.name), spec.size, config.image_size, config.channels))
            oset = data.ood_set_from_arrays(spec.name, images, val_fraction=config.ood_val_percent / 100,
                                            kind=spec.kind)
        else:
            oset = data.ood_set_from_tfds(spec.name, split=spec.split, val_percent=config.ood_val_percent,
                                          kind=spec.kind, **src)
        ood_sets.append(_cap(oset, config.ood_test_size))
    if config.id_dataset not in data.NORMALIZATION:
        raise ValueError(f"no normalization statistics for {config.id_dataset!r}; known: {sorted(data.NORMALIZATION)}")
    mean, std = data.NORMALIZATION[config.id_dataset]
    return Data(train_xy, val_xy, (x_te, y_te), ood_sets, channel_normalizer(mean, std), tuple(std))


def run_benchmark(config: BenchmarkConfig) -> dict[str, Any]:
    """A paper table on real data: the plain model with `scorers`, the anchored one with AMP."""
    start = time.time()
    k_data, k_run = jax.random.split(jax.random.key(config.seed))
    d = benchmark_data(config, k_data)
    results = train_and_evaluate(
        model=config.model, model_kwargs=config.model_kwargs, d=d, scorers=config.scorers, train_cfg=config.train,
        amp=config.amp, fit_size=config.fit_size, train_dir=_train_dir(config), tag=config.id_dataset, key=k_run,
        batch_size=config.batch_size, bootstrap=config.bootstrap, progress=config.progress)
    return write_results(config, results, start)


@dataclasses.dataclass(frozen=True)
class AMPAblationConfig:
    """Paper 000, Table 8: one anchored model per corruption set of consistency training, each
    scored with K anchors for every K in num_anchors; FPR95 (ID positive) of eq. 2 averaged over the
    OOD sets named in `ood_sets` (None: all of the base experiment's). base: the data, model and
    training (an EmbeddedConfig or a BenchmarkConfig; its amp.training gives the anchor draw and
    `every`)."""

    base: EmbeddedConfig | BenchmarkConfig
    name: str = "amp_ablation"
    corruption_sets: Mapping[str, tuple[str, ...]] = dataclasses.field(
        default_factory=lambda: {k: v for k, v in anchoring.TABLE8_CORRUPTIONS.items() if k != "all"})
    num_anchors: tuple[int, ...] = (2, 5, 10, 20)
    ood_sets: tuple[str, ...] | None = None
    results_dir: str = "results"


def base_data(base: EmbeddedConfig | BenchmarkConfig, ood_sets: tuple[str, ...] | None) -> tuple[Data, jax.Array]:
    """(the data of an ablation's or comparison's base experiment with only the OOD sets named in
    `ood_sets` (None: all), the key for the runs): shared by the Table 8 and methods runners."""
    k_data, k_run = jax.random.split(jax.random.key(base.seed))
    d = embedded_data(base, *jax.random.split(k_data)) if isinstance(base, EmbeddedConfig) else benchmark_data(base, k_data)
    if ood_sets is not None:
        missing = set(ood_sets) - {s.name for s in d.ood_sets}
        if missing:
            raise ValueError(f"OOD sets {sorted(missing)} are not in the base experiment: {[s.name for s in d.ood_sets]}")
        d = d._replace(ood_sets=[s for s in d.ood_sets if s.name in ood_sets])
    return d, k_run


def run_amp_ablation(config: AMPAblationConfig) -> dict[str, Any]:
    start = time.time()
    base = config.base
    amp = base.amp or AMPConfig()
    d, k_run = base_data(base, config.ood_sets)
    (x_tr, y_tr), (x_te, y_te) = d.train_xy, d.test_xy
    h, _, c = x_tr.shape[1:]
    net = get_model(base.model, num_classes=int(y_tr.max()) + 1, in_channels=2 * c, image_size=h,
                    **dict(getattr(base, "model_kwargs", {})))
    x_norm = d.normalize(x_tr)
    out_dir = Path(config.results_dir) / config.name
    records = []
    for label, corruptions in config.corruption_sets.items():
        training = dataclasses.replace(amp.training, corruptions=tuple(corruptions))
        net_vars, _ = train(net, x_norm, y_tr, amp.train or base.train, key=jax.random.fold_in(k_run, 0),
                            workdir=out_dir / f"train_anchored_{label}", progress=base.progress,
                            input_transform=training)
        for k in config.num_anchors:
            model, variables = anchored_for_inference(net, net_vars, x_norm, amp, jax.random.fold_in(k_run, k), k)
            res = evaluate(model, variables, build_scorers({"amp": ("amp", {})}), fit_images=x_tr[:100],
                           fit_labels=y_tr[:100], id_val=ArraySource(d.val_xy[0][:100]), id_test=ArraySource(x_te),
                           id_test_labels=y_te, ood_sets=d.ood_sets, normalize=d.normalize, input_std=d.input_std,
                           key=k_run, batch_size=base.batch_size, progress=False)
            records += [{**r, "corruption": label, "anchors": k} for r in res.records]
    table = metrics.format_grid(records, row="corruption", col="anchors", metrics=("fpr95",), average=False)
    summary = f"Paper 000, Table 8: FPR95 of AMP (eq. 2), mean over {len(d.ood_sets)} OOD sets; rows: consistency " \
              f"corruptions, columns: number of anchors\n\n{table}"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "table8.md").write_text(summary)
    (out_dir / "metrics.json").write_text(json.dumps(records, indent=1))
    return {"summary": summary, "records": records, "out_dir": out_dir, "seconds": time.time() - start,
            "id_accuracies": {}}


# Config type -> the function that runs it (experiments/run.py dispatches on this).
RUNNERS: dict[type, Callable[[Any], dict[str, Any]]] = {
    EmbeddedConfig: run_embedded,
    BenchmarkConfig: run_benchmark,
    AMPAblationConfig: run_amp_ablation,
}
