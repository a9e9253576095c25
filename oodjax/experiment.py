"""The embedded Fashion-MNIST experiment, end to end on a CPU: train small CNNs, evaluate every
registered scorer (ODIN tuned per OOD validation split) on the offline suite, write results.

`run_embedded(config)` is what `make demo` (via `python -m experiments.run`) and the tests call.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

from oodjax import data, metrics, scores
from oodjax.data import ArraySource, OODSet
from oodjax.evaluate import EvalResult, build_scorers, evaluate
from oodjax.models import get as get_model
from oodjax.plots import write_plots
from oodjax.training import TrainConfig, train

NEAR_SET = "fmnist-heldout-classes"


def default_scorers() -> dict[str, tuple[str, dict[str, Any]]]:
    """Every registered scorer with its paper defaults, plus MSP at T = 1000 (paper 001)."""
    spec: dict[str, tuple[str, dict[str, Any]]] = {name: (name, {}) for name in scores.names()}
    spec["msp_T1000"] = ("msp", {"temperature": 1000.0})
    return spec


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
    scorers: Mapping[str, tuple[str, Mapping[str, Any]]] = dataclasses.field(default_factory=default_scorers)
    batch_size: int = 500
    bootstrap: int = 0
    plots: bool = True
    progress: bool = True


def normalize(images: np.ndarray) -> np.ndarray:
    """The same normalization for ID and OOD images (paper 000): (x - mean) / std."""
    return ((images - data.MEAN) / data.STD).astype(np.float32)


def _cap(oset: OODSet, n: int | None) -> OODSet:
    if n is None or len(oset.test) <= n:
        return oset
    return dataclasses.replace(oset, test=ArraySource(oset.test.images[:n], oset.name))


def _take(x: np.ndarray, y: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x[idx], y[idx]


def _split_train(config: EmbeddedConfig, x: np.ndarray, y: np.ndarray, key: jax.Array):
    perm = np.asarray(jax.random.permutation(key, x.shape[0]))
    if config.val_size >= x.shape[0]:
        raise ValueError(f"val_size {config.val_size} leaves no training images out of {x.shape[0]}")
    val_idx, train_idx = perm[: config.val_size], perm[config.val_size :]
    if config.train_size is not None:
        train_idx = train_idx[: config.train_size]
    return _take(x, y, np.sort(train_idx)), _take(x, y, np.sort(val_idx))


def _train_and_evaluate(
    config: EmbeddedConfig, tag: str, train_xy, val_xy, test_xy, ood_sets: list[OODSet], key: jax.Array
) -> EvalResult:
    (x_tr, y_tr), (x_val, _), (x_te, y_te) = train_xy, val_xy, test_xy
    k_train, k_fit, k_eval = jax.random.split(key, 3)
    model = get_model(config.model, num_classes=int(y_tr.max()) + 1, in_channels=1, image_size=28)
    train_dir = Path(config.train_dir) if config.train_dir else Path(config.results_dir) / config.name
    # The workdir holds the checkpoints: a killed run resumes, a finished one is reused.
    variables, _ = train(model, normalize(x_tr), y_tr, config.train, key=k_train,
                         workdir=train_dir / f"train_{tag}", progress=config.progress)
    fit_idx = np.sort(np.asarray(jax.random.permutation(k_fit, x_tr.shape[0]))[: config.fit_size])
    return evaluate(
        model, variables, build_scorers(config.scorers),
        fit_images=x_tr[fit_idx], fit_labels=y_tr[fit_idx], id_val=ArraySource(x_val), id_test=ArraySource(x_te),
        id_test_labels=y_te, ood_sets=ood_sets, normalize=normalize, input_std=(data.STD,), key=k_eval,
        batch_size=config.batch_size, bootstrap=config.bootstrap, progress=config.progress,
    )


def summary_table(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per scorer and kind of shift (far / near / covariate / resize): metrics averaged over the sets."""
    out = []
    for kind in ("far", "near", "covariate", "resize"):
        rows = [r for r in records if r.get("kind") == kind]
        out += metrics.average_records(rows, name=f"{kind} (avg of {len({r['ood_set'] for r in rows})})") if rows else []
    return out


def run_embedded(config: EmbeddedConfig) -> dict[str, Any]:
    """Trains, evaluates, writes results_dir/name/{metrics.json (a list of records), table.md,
    table.csv, summary.md, run.json, plots/, train_*/}, and returns {'id_accuracy', 'records', 'summary', 'out_dir', 'seconds'}."""
    start = time.time()
    key = jax.random.key(config.seed)
    k_split, k_test, k_main, k_near = jax.random.split(key, 4)
    x_all, y_all = data.load_fashion_mnist("train", config.data_dir)
    x_te, y_te = data.load_fashion_mnist("test", config.data_dir)
    if config.test_size is not None:
        idx = np.sort(np.asarray(jax.random.permutation(k_test, x_te.shape[0]))[: config.test_size])
        x_te, y_te = x_te[idx], y_te[idx]
    train_xy, val_xy = _split_train(config, x_all, y_all, k_split)

    suite = data.embedded_suite(x_te, far=config.far_sets, resize=config.resize_sets,
                                corruptions=config.corruptions, corruption_size=config.corruption_size)
    suite = [_cap(s, config.ood_test_size) for s in suite]
    main = _train_and_evaluate(config, "all_classes", train_xy, val_xy, (x_te, y_te), suite, k_main)
    records, all_scores = list(main.records), {k: dict(v) for k, v in main.scores.items()}
    accuracies = {"all_classes": main.id_accuracy}

    if config.near_ood_classes is not None:
        cls = config.near_ood_classes
        near_train = data.heldout_classes(*train_xy, cls)[:2]
        near_val = data.heldout_classes(*val_xy, cls)[:2]
        id_x, id_y, ood_x = data.heldout_classes(x_te, y_te, cls)
        near_set = _cap(data.ood_set_from_arrays(NEAR_SET, ood_x, kind="near"), config.ood_test_size)
        near = _train_and_evaluate(config, "heldout", near_train, near_val, (id_x, id_y), [near_set], k_near)
        records += near.records
        for k, v in near.scores.items():
            all_scores[k].update(v)
        accuracies["heldout"] = near.id_accuracy

    out_dir = Path(config.results_dir) / config.name
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = metrics.format_table(summary_table(records), average=False)
    (out_dir / "summary.md").write_text(summary)
    (out_dir / "table.md").write_text(metrics.format_table(records))
    (out_dir / "table.csv").write_text(metrics.format_table(records, fmt="csv"))
    (out_dir / "metrics.json").write_text(json.dumps(records, indent=1))  # id_accuracy in every record
    (out_dir / "run.json").write_text(json.dumps(
        {"config": dataclasses.asdict(config), "id_accuracies": accuracies, "seconds": time.time() - start},
        indent=1, default=str))
    if config.plots:
        write_plots(all_scores, records, out_dir / "plots")
    return {
        "id_accuracy": main.id_accuracy,
        "id_accuracies": accuracies,
        "records": records,
        "summary": summary,
        "out_dir": out_dir,
        "seconds": time.time() - start,
    }
