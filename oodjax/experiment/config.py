"""The one experiment config type: the data, a list of models (each with its scorers) and the
report views. Config files in `experiments/configs/` return an `Experiment`; small variants are
`dataclasses.replace` of it.

  Experiment(name, data=EmbeddedData(...) | TfdsData(...), models=(ModelSpec(...), ...), views=(...))

A ModelSpec is a plain classifier, an anchored one (anchoring=Anchoring()), a deep ensemble
(members >= 2), MC-dropout (mc_samples >= 2), a training-time method (head, objective) or one
fine-tuned from another (finetune_from); `classes` trains it on a subset of the ID classes with the
others as its near-OOD set. Everything is validated before any work starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from oodjax.anchoring import AnchoredTraining
from oodjax.training import CrossEntropy, Objective, TrainConfig

ScorerSpec = Mapping[str, tuple[str, Mapping[str, Any]]]  # {label: (registered scorer, hyper-parameters)}
ALL_FITTING = None  # ModelSpec.scorers=None: every registered scorer the model can feed (scores.fitting)


def check_size(size: int | float, what: str) -> None:
    """A count of images (int >= 1) or a fraction of a set (float in (0, 1])."""
    if isinstance(size, bool) or not isinstance(size, (int, float)):
        raise TypeError(f"{what} must be a count (int) or a fraction (float), got {size!r}")
    if isinstance(size, int) and size < 1 or isinstance(size, float) and not 0.0 < size <= 1.0:
        raise ValueError(f"{what} must be a count >= 1 or a fraction in (0, 1], got {size!r}")


def count(size: int | float | None, n: int) -> int:
    """How many of n images `size` (a count, a fraction, None: all) takes."""
    if size is None:
        return n
    return min(n, size) if isinstance(size, int) else max(1, round(size * n))


@dataclasses.dataclass(frozen=True)
class OODSpec:
    """One OOD set of a tfds benchmark: a tfds dataset (`name` as in data.TFDS_DATASETS, a raw tfds
    name or imagenet_c/<corruption>/<severity>), the images under `folder` (LSUN, iSUN,
    TinyImageNet, SCOOD) resized with Pillow's `resample` filter (paper 000, Table 7), or synthetic
    noise (`name` "gaussian_noise" / "uniform_noise" without a folder; `size` images, paper 001).
    As an experiment's outlier set, "auxiliary_outliers" is the embedded suite's
    (data.auxiliary_outliers)."""

    name: str
    folder: str | None = None
    kind: str = "far"
    split: str | None = None
    resample: str = "bilinear"
    size: int = 1500


@dataclasses.dataclass(frozen=True)
class EmbeddedData:
    """Fashion-MNIST (ID) against the offline suite (far, resize artifacts, covariate shift), on a CPU.

    data_dir: the IDX folder (None: $OODJAX_FASHION_MNIST or Debian's). train_size: None = all
    training images but the val_size hold-out. test_size: ID test images (None: all 10k).
    ood_test_size: cap on each OOD test split (its first n images).
    """

    data_dir: str | None = None
    train_size: int | None = None
    val_size: int = 5000
    test_size: int | None = None
    far_sets: tuple[str, ...] = ("digits", "textures", "photo_crop", "photo_resize", "gaussian_noise", "uniform_noise")
    resize_sets: bool = True
    corruptions: tuple[str, ...] = ("gaussian_blur", "gaussian_noise")
    corruption_size: int = 2000
    ood_test_size: int | None = None
    image_size: int = 28
    channels: int = 1
    id_name: str = "fmnist"
    ood: tuple[OODSpec, ...] = ()  # more OOD sets: image folders (a user's own OOD images) or synthetic noise


@dataclasses.dataclass(frozen=True)
class TfdsData:
    """A tfds ID dataset (its train split -> train + validation hold-out; its test split -> ID test)
    against OOD sets, for GPU/TPU runs with a prepared tfds data_dir. A dataset stored as ArrayRecord
    (`tfds build --file_format=array_record`) is read by index, batch by batch, never held in memory.
    normalization: per-channel (mean, std) of its training images in [0, 1] (None: data.NORMALIZATION's)."""

    id_dataset: str = "cifar10"
    ood: tuple[OODSpec, ...] = ()
    data_dir: str | None = None
    image_size: int = 32
    channels: int = 3
    train_size: int | None = None
    val_size: int = 5000
    test_size: int | None = None
    ood_test_size: int | None = None
    ood_val_percent: int = 20
    normalization: tuple[tuple[float, ...], tuple[float, ...]] | None = None

    def __post_init__(self):
        if self.normalization is not None:
            mean, std = self.normalization
            if len(mean) != self.channels or len(std) != self.channels or min(std) <= 0:
                raise ValueError(f"normalization must be (mean, std) with {self.channels} values each (channels) "
                                 f"and std > 0, got {self.normalization}")

    @property
    def id_name(self) -> str:
        return self.id_dataset


@dataclasses.dataclass(frozen=True)
class Anchoring:
    """An anchored network (paper 000): trained with `training`, scored marginalized over
    `num_anchors` anchors drawn from the training images; per_sample: each input draws its own K
    anchors from a pool of `pool_size` (official code) instead of all sharing K (paper, Fig. 3)."""

    training: AnchoredTraining = AnchoredTraining()
    num_anchors: int = 5
    per_sample: bool = False
    pool_size: int = 1000

    def __post_init__(self):
        if self.num_anchors < 2:
            raise ValueError(f"num_anchors must be >= 2 (tau is a standard deviation over anchors), got {self.num_anchors}")


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """One model of an experiment: how it is built and trained, and what scores it.

    name: its label in records and tables. scorers: {label: (registered scorer, hyper-parameters)},
      or None for every registered scorer it can feed, with registered defaults (the papers' full
      grids and the flows: slow on a CPU; list scorers to choose). arch / model_kwargs: the backbone (None: the
      experiment's). head / head_kwargs: a head variant (models.HEADS). objective: the loss.
    train: its TrainConfig (None: the experiment's). train_name: its checkpoint folder
      train_dir/train_<train_name> (None: its name; models that share one share their training).
    anchoring: an anchored network. members >= 2: a deep ensemble of that many trainings from
      different keys. mc_samples >= 2: MC-dropout with that many masks. finetune_from: an earlier
      model whose trained weights this one starts from. outliers: train with the experiment's
      outlier stream (objectives with outlier exposure). classes: train / validate / test on these
      ID classes only, with the others as its only (near) OOD set. fit_size / val_size: caps on its
      scorers' fit images (a count, or a fraction of the training set) and ID validation images. ood_sets: the experiment's OOD sets it is scored on
      (None: all). tags: extra fields added to its records (e.g. {"anchors": 5}).
    checkpoint: a pretrained network to score instead of training one (`models.import_checkpoint`:
      a torchvision / OOD-repository .pth or .safetensors, a BiT .npz, or an oodjax orbax workdir);
      checkpoint_arch: the architecture the file must hold (None: what it holds; an orbax workdir
      takes arch / model_kwargs).
    """

    name: str
    scorers: ScorerSpec | None = ALL_FITTING
    arch: str | None = None
    model_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    head: str | None = None
    head_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    objective: Objective = CrossEntropy()
    train: TrainConfig | None = None
    train_name: str | None = None
    anchoring: Anchoring | None = None
    members: int = 0
    mc_samples: int = 0
    finetune_from: str | None = None
    outliers: bool = False
    classes: tuple[int, ...] | None = None
    fit_size: int | float | None = None
    val_size: int | None = None
    ood_sets: tuple[str, ...] | None = None
    tags: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    checkpoint: str | None = None
    checkpoint_arch: str | None = None

    def __post_init__(self):
        if self.checkpoint is not None and (self.anchoring or self.members or self.mc_samples or self.finetune_from
                                            or self.head or self.outliers or self.classes):
            raise ValueError(f"model {self.name!r}: a checkpoint is scored as it is; anchoring, members, "
                             "mc_samples, finetune_from, head, outliers and classes need training")
        if self.members == 1 or self.members < 0:
            raise ValueError(f"model {self.name!r}: members must be 0 (one model) or >= 2 (an ensemble), "
                             f"got {self.members}")
        if self.mc_samples == 1 or self.mc_samples < 0:
            raise ValueError(f"model {self.name!r}: mc_samples must be 0 or >= 2, got {self.mc_samples}")
        if self.outliers != self.objective.uses_outliers:
            raise ValueError(f"model {self.name!r}: outliers={self.outliers} does not fit the objective "
                             f"{self.objective}")
        if self.fit_size is not None:
            check_size(self.fit_size, f"model {self.name!r}: fit_size")
        if sum(map(bool, (self.anchoring, self.members, self.mc_samples))) > 1:
            raise ValueError(f"model {self.name!r}: choose one of anchoring, members and mc_samples")


@dataclasses.dataclass(frozen=True)
class Experiment:
    """Data, models and report views; `oodjax.experiment.run(experiment)` runs it.

    arch / model_kwargs / train: the models' defaults. fit_size: training images the scorers fit on
    (a random subset, streamed in batches): a count (int) or a fraction of the training set (float in (0, 1]). outliers / outlier_size: the auxiliary outlier set (disjoint from the test
    sets) of models with `outliers` and scorers that need one. views: names of registered report
    views (`oodjax.experiment.views`), written in order after metrics.json and run.json. title /
    metrics: the tables' caption and columns. train_dir: where train_<model>/ checkpoints live
    (None: results_dir/name; share one to reuse trained models). plot_workers: processes drawing the
    figures (`plots.write_plots`; None: one per CPU, spawned, so a script calling `run` needs the
    `if __name__ == "__main__":` guard that experiments/run.py has; it sets None).
    """

    name: str
    data: EmbeddedData | TfdsData
    models: tuple[ModelSpec, ...]
    arch: str = "small_cnn"
    model_kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    train: TrainConfig = TrainConfig()
    fit_size: int | float = 10000
    outliers: OODSpec | None = None
    outlier_size: int = 2000
    views: tuple[str, ...] = ("summary", "table", "plots")
    title: str = ""
    metrics: tuple[str, ...] | None = None
    results_dir: str = "results"
    train_dir: str | None = None
    seed: int = 0
    batch_size: int = 500
    bootstrap: int = 0
    progress: bool = True
    plot_workers: int | None = 1

    def __post_init__(self):
        check_size(self.fit_size, f"experiment {self.name!r}: fit_size")
        names = [m.name for m in self.models]
        if not names:
            raise ValueError(f"experiment {self.name!r} has no models")
        if len(set(names)) != len(names):
            raise ValueError(f"experiment {self.name!r}: model names must be unique, got {names}")
        for i, m in enumerate(self.models):
            if m.finetune_from is not None and m.finetune_from not in names[:i]:
                raise ValueError(f"model {m.name!r} fine-tunes {m.finetune_from!r}, which is not an earlier model")
            if m.outliers and self.outliers is None:
                raise ValueError(f"model {m.name!r} trains with outliers: set Experiment.outliers")
