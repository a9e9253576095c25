"""Runs an experiment config: `python -m experiments.run experiments/configs/embedded.py [--variant small]`.

A pretrained network instead of the config's trained ones: `--checkpoint PATH [--arch NAME]` scores
it (a torchvision / OOD-repository .pth or .safetensors, a BiT .npz, or an oodjax training workdir)
with the scorers of the config's models and its data, without training. `--ood-folder NAME=PATH`
(repeatable) adds a folder of one's own OOD images as an OOD set.

The config file's get_config(variant) returns an `oodjax.experiment.Experiment`; this calls
`oodjax.experiment.run` on it and prints the summary.

Several processes (hosts) run one experiment under `jax.distributed`: start the same command on
every host, with --distributed where jax finds the processes itself (Cloud TPU pods, SLURM, Open
MPI), or with --coordinator HOST:PORT --num-processes N --process-id I. Each process reads its rows
of every batch; process 0 writes the results.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import sys
from pathlib import Path

from experiments import xla_cpu

xla_cpu.apply()  # before jax starts: this lock's XLA:CPU flags (experiments/xla_cpu.py)


def load_config(path: str, variant: str):
    spec = importlib.util.spec_from_file_location(Path(path).stem, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load config file {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config(variant)


def with_dirs(exp, data_dir: str | None = None, results_dir: str | None = None):
    """The experiment with its data's data_dir and its results_dir set (None: unchanged)."""
    if data_dir:
        exp = dataclasses.replace(exp, data=dataclasses.replace(exp.data, data_dir=data_dir))
    if results_dir:
        exp = dataclasses.replace(exp, results_dir=results_dir)
    return exp


LISTS = ("scorers", "models", "ood-sets", "views")


def list_names(what: str) -> list[str]:
    """The registered scorers (with what each needs), models, embedded OOD sets or report views."""
    if what == "scorers":
        from oodjax import scores

        return [f"{n:28s} needs {', '.join(sorted(scores.get(n).needs))}" for n in scores.names()]
    if what == "models":
        from oodjax import models

        return models.names()
    if what == "ood-sets":
        from oodjax.data import embedded

        return [*embedded.FAR_SETS, *embedded.RESIZE_SETS,
                *(f"fmnist-{c}-1..5" for c in embedded.COVARIATE_CORRUPTIONS), "fmnist-heldout-classes",
                "(tfds: cifar10, cifar100, svhn, places365, dtd, imagenet_*, any tfds name; or image folders)"]
    from experiments.presets import paper000  # noqa: F401  (registers the paper's views)
    from oodjax.experiment import views

    return views._VIEWS.names()


def only_scorers(exp, labels: list[str]):
    """The experiment with each model keeping only the scorers labelled in `labels`; a model left
    with none is dropped unless a kept model is fine-tuned from it. SystemExit naming labels no
    model has."""
    known = {label for m in exp.models for label in (m.scorers or {})}
    missing = sorted(set(labels) - known)
    if missing:
        raise SystemExit(f"--scorers: {missing} are not scorer labels of this config; it has {sorted(known)}")
    kept = [dataclasses.replace(m, scorers={k: v for k, v in (m.scorers or {}).items() if k in labels})
            for m in exp.models]
    needed = {m.finetune_from for m in kept if m.scorers}
    return dataclasses.replace(exp, models=tuple(m for m in kept if m.scorers or m.name in needed))


def with_checkpoint(exp, path: str, arch: str | None):
    """The experiment scoring the network in `path` (models.import_checkpoint) with the scorers of the
    config's models that need no training of their own (no anchoring, ensembles, heads, ...)."""
    from oodjax.experiment import ModelSpec

    plain = [m for m in exp.models if not (m.anchoring or m.members or m.mc_samples or m.head or m.outliers
                                           or m.classes or m.finetune_from)]
    if not plain:
        raise SystemExit("--checkpoint: this config has no plain model whose scorers could score a checkpoint")
    scorers = None if any(m.scorers is None for m in plain) else {k: v for m in plain for k, v in m.scorers.items()}
    name = Path(path).stem if Path(path).suffix else Path(path).name
    return dataclasses.replace(exp, models=(ModelSpec(name, scorers, arch=plain[0].arch, model_kwargs=plain[0].model_kwargs,
                                                      checkpoint=str(path), checkpoint_arch=arch),))


def with_ood_folders(exp, pairs: list[str]):
    """The experiment with the image folders NAME=PATH as more (far) OOD sets."""
    from oodjax.experiment import OODSpec

    specs = []
    for pair in pairs:
        name, sep, folder = pair.partition("=")
        if not sep or not name or not folder:
            raise SystemExit(f"--ood-folder takes NAME=PATH, got {pair!r}")
        specs.append(OODSpec(name, folder=folder))
    return dataclasses.replace(exp, data=dataclasses.replace(exp.data, ood=(*exp.data.ood, *specs)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", nargs="?", help="a config file with get_config(variant)")
    parser.add_argument("--variant", default="default")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder, or the tfds data_dir")
    parser.add_argument("--results-dir", default=None)
    parser.add_argument("--list", choices=LISTS, default=None, help="print what exists and exit (no config needed)")
    parser.add_argument("--scorers", default=None, help="comma-separated scorer labels of the config to run (a subset)")
    parser.add_argument("--checkpoint", default=None,
                        help="score this pretrained network (.pth/.safetensors/.npz or an oodjax workdir), no training")
    parser.add_argument("--arch", default=None, help="with --checkpoint: the architecture the file must hold")
    parser.add_argument("--ood-folder", action="append", default=[], metavar="NAME=PATH",
                        help="a folder of OOD images to score as the set NAME (repeatable)")
    parser.add_argument("--distributed", action="store_true",
                        help="jax.distributed.initialize() with what the cluster says (TPU pod, SLURM, Open MPI)")
    parser.add_argument("--coordinator", default=None, help="HOST:PORT of process 0, for jax.distributed")
    parser.add_argument("--num-processes", type=int, default=None, help="with --coordinator: how many processes")
    parser.add_argument("--process-id", type=int, default=None, help="with --coordinator: this process's index")
    args = parser.parse_args(argv)
    explicit = (args.coordinator, args.num_processes, args.process_id)
    if any(a is not None for a in explicit) and (None in explicit or args.distributed):
        parser.error("give --coordinator, --num-processes and --process-id together (or --distributed alone)")
    if args.list:
        print("\n".join(list_names(args.list)))
        return 0
    if args.config is None:
        parser.error("give a config file (or --list ...)")
    if args.arch and not args.checkpoint:
        parser.error("--arch names the architecture of a --checkpoint; give the checkpoint")

    if args.distributed or args.coordinator:
        import jax

        jax.distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    from oodjax.experiment import Experiment, run
    from oodjax.parallel import is_leader

    exp = with_dirs(load_config(args.config, args.variant), args.data_dir, args.results_dir)
    if not isinstance(exp, Experiment):
        raise SystemExit(f"{args.config}: get_config returned a {type(exp).__name__}, not an oodjax.experiment.Experiment")
    if args.checkpoint:
        exp = with_checkpoint(exp, args.checkpoint, args.arch)
    if args.ood_folder:
        exp = with_ood_folders(exp, args.ood_folder)
    if args.scorers:
        exp = only_scorers(exp, args.scorers.split(","))
    exp = dataclasses.replace(exp, plot_workers=None)  # one per CPU: this entry point has the __main__ guard
    if not is_leader():  # one set of progress bars: process 0's
        exp = dataclasses.replace(exp, progress=False)
    from oodjax.models import CheckpointError

    try:
        result = run(exp)
    except (FileNotFoundError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not is_leader():
        return 0
    if result["id_accuracies"]:
        acc = ", ".join(f"{k}: {v:.4f}" for k, v in result["id_accuracies"].items() if v is not None)
        print(f"\nID test accuracy ({acc})")
        print("Higher score = more in-distribution.\n")
    print(result["summary"])
    out = result["out_dir"]
    print(f"\nresults: {out}/ (tables, metrics.json, plots/)")
    print(f"done in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
