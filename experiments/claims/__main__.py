"""Trains and scores every group of claims of a variant, then writes the claims report.

  python -m experiments.claims --variant gpu              # all groups, then results/claims/claims.md
  python -m experiments.claims --variant cpu --groups 000 002
  python -m experiments.claims --variant gpu --report-only  # the report from the saved scores

Each group is an experiment (results/claims_<variant>_<group>/: metrics, summary, scores.npz); its
networks train in results/claims_<variant>/train/ (resumable: a killed run goes on where it
stopped, a finished network is reused). A group whose scores exist is not run again (--rerun).
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import sys
import time
from pathlib import Path

from experiments import xla_cpu

xla_cpu.apply()  # before jax starts


def main(argv: list[str] | None = None) -> int:
    from experiments.claims import config, report  # noqa: PLC0415  (after the XLA flags)
    from experiments.run import with_dirs  # noqa: PLC0415
    from oodjax.experiment import run, validate  # noqa: PLC0415

    p = argparse.ArgumentParser(prog="python -m experiments.claims", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--variant", default="gpu", choices=config.VARIANTS)
    p.add_argument("--groups", nargs="+", default=None, help=f"groups to run (default: all of {config.GROUPS})")
    p.add_argument("--data-dir", default=None, help="tfds data_dir (cifar10, imagenet)")
    p.add_argument("--results-dir", default="results")
    p.add_argument("--out", default="results/claims", help="where claims.md and claims.json go")
    p.add_argument("--report-only", action="store_true", help="write the report from saved scores, run nothing")
    p.add_argument("--rerun", action="store_true", help="run groups whose scores.npz exists again")
    p.add_argument("--epochs", type=int, default=None, help="train the networks this many epochs instead of the "
                                                            "variant's (fine-tuning keeps its own)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs of unattended runs)")
    p.add_argument("--fallback", nargs="*", default=(), choices=config.VARIANTS,
                   help="report groups the variant has not run from these variants' runs (marked in the report)")
    args = p.parse_args(argv)
    groups = args.groups or (("002", "004") if args.variant == "imagenet" else config.GROUPS)
    unknown = sorted(set(groups) - set(config.GROUPS))
    if unknown:
        p.error(f"unknown groups {unknown}; choose from {config.GROUPS}")
    if args.epochs is not None and args.epochs < 1:
        p.error(f"--epochs must be >= 1, got {args.epochs}")
    if not args.report_only:
        train_dir = str(Path(args.results_dir) / f"claims_{args.variant}" / "train")  # shared by the groups
        try:
            exps = [dataclasses.replace(with_dirs(config.get_config(args.variant, g, epochs=args.epochs), args.data_dir,
                                                  args.results_dir), train_dir=train_dir,
                                        progress=not args.no_progress) for g in groups]
        except ValueError as e:
            p.error(str(e))
        for exp in exps:  # every group's config, scorer and data checks before the first training
            validate(exp)
        for exp in exps:
            done = Path(exp.results_dir) / exp.name / "scores.npz"
            if done.exists() and not args.rerun:
                print(f"{exp.name}: scores exist ({done}); skipped (--rerun to run it again)", flush=True)
                continue
            t = time.time()
            out = run(exp)
            print(f"{exp.name}: done in {time.time() - t:.0f} s\n{out['summary']}", flush=True)
    command = "python -m experiments.claims " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    md, results = report.write(args.results_dir, args.variant, args.out, command, tuple(args.fallback))
    for c in results:
        print(f"{c['id']:12s} {c['verdict']:32s} {c['claim']}")
    print(f"report: {md}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
