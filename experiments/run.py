"""Runs an experiment config: `python -m experiments.run experiments/configs/embedded.py [--variant small]`.

The config file's get_config(variant) returns an `oodjax.experiment.Experiment`; this calls
`oodjax.experiment.run` on it and prints the summary.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import sys
from pathlib import Path


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", help="a config file with get_config(variant)")
    parser.add_argument("--variant", default="default")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder, or the tfds data_dir")
    parser.add_argument("--results-dir", default=None)
    args = parser.parse_args(argv)

    from oodjax.experiment import Experiment, run

    exp = with_dirs(load_config(args.config, args.variant), args.data_dir, args.results_dir)
    if not isinstance(exp, Experiment):
        raise SystemExit(f"{args.config}: get_config returned a {type(exp).__name__}, not an oodjax.experiment.Experiment")
    try:
        result = run(exp)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if result["id_accuracies"]:
        acc = ", ".join(f"{k}: {v:.4f}" for k, v in result["id_accuracies"].items() if v is not None)
        print(f"\nID test accuracy ({acc})")
        print("Higher score = more in-distribution; values in %; averages per kind of set:\n")
    print(result["summary"])
    tuned = sorted({(r["ood_set"], tuple(sorted(r["tuned"].items()))) for r in result["records"] if "tuned" in r})
    if tuned:
        print("Tuned on each OOD set's validation split:")
        for name, values in tuned:
            print(f"  {name}: " + ", ".join(f"{k}={v:g}" for k, v in values))
    out = result["out_dir"]
    print(f"\nresults: {out}/ (tables, metrics.json, plots/)")
    print(f"done in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
