"""Runs an experiment config: `python -m experiments.run experiments/configs/embedded.py [--variant small]`."""

from __future__ import annotations

import argparse
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("config", help="a config file with get_config(variant)")
    parser.add_argument("--variant", default="default")
    parser.add_argument("--data-dir", default=None, help="Fashion-MNIST IDX folder")
    parser.add_argument("--results-dir", default=None)
    args = parser.parse_args(argv)

    import dataclasses

    from oodjax.experiment import run_embedded

    config = load_config(args.config, args.variant)
    overrides = {k: v for k, v in (("data_dir", args.data_dir), ("results_dir", args.results_dir)) if v}
    config = dataclasses.replace(config, **overrides)
    try:
        result = run_embedded(config)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    acc = ", ".join(f"{k}: {v:.4f}" for k, v in result["id_accuracies"].items())
    print(f"\nFashion-MNIST test accuracy ({acc})")
    print("ID = Fashion-MNIST test; higher score = more in-distribution; values in %; averages per kind of set:\n")
    print(result["summary"])
    tuned = sorted({(r["ood_set"], tuple(sorted(r["tuned"].items()))) for r in result["records"] if "tuned" in r})
    if tuned:
        print("Tuned on each OOD set's validation split:")
        for name, values in tuned:
            print(f"  {name}: " + ", ".join(f"{k}={v:g}" for k, v in values))
    out = result["out_dir"]
    print(f"\nper-set table: {out}/table.md (and table.csv, metrics.json); plots: {out}/plots/")
    print(f"done in {result['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
