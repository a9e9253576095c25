"""The claims report: every claim's paired tests on a variant's saved scores, written as
results/claims/claims.md and claims.json.

Each test is `metrics.paired_bootstrap` (1000 resamples of the ID test and OOD images, shared by
both scorers; key fold_in(key(0), test index)) with `metrics.verdict`'s rule. FPR95 is ID positive
(the fraction of OOD images at or above the threshold keeping 95% of ID images): lower is better.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from experiments.claims import config
from experiments.claims.claims import CLAIMS, Claim, Side, Test
from oodjax import metrics, plots
from oodjax.experiment.views import read_scores
from oodjax.files import write_atomic

N_RESAMPLES = 1000


class Results:
    """Saved runs of a variant and its fallbacks: per (variant, group), the scores (model -> scorer
    -> set -> (ID, OOD)), the sets' kinds, and the run's config, accuracies and provenance."""

    def __init__(self, results_dir: str | Path, variant: str, fallback: tuple[str, ...] = ()):
        self.variant, self.order, self.runs = variant, (variant, *fallback), {}
        for v in self.order:
            for d in sorted(Path(results_dir).glob(f"claims_{v}_*")):
                if (d / "scores.npz").exists() and (d / "run.json").exists():
                    run = json.loads((d / "run.json").read_text())
                    kinds = {r["ood_set"]: r.get("kind", "far") for r in json.loads((d / "metrics.json").read_text())}
                    self.runs[(v, d.name.removeprefix(f"claims_{v}_"))] = (read_scores(d / "scores.npz"), kinds, run)
        self.used: set[tuple[str, str]] = set()  # the runs some test read

    def variant_for(self, groups: set[str]) -> str | None:
        """The first of the variant and its fallbacks that ran all of `groups` (a paired test needs
        both sides on the same images: the same variant)."""
        return next((v for v in self.order if all((v, g) in self.runs for g in groups)), None)

    def sides(self, side: Side, sets, variant: str) -> list[tuple[str, np.ndarray, np.ndarray]] | None:
        """[(set, ID scores, OOD scores)] of `side` in `variant`'s run on the selected sets, or None."""
        scores, kinds, _ = self.runs[(variant, side.group)]
        by_set = scores.get(side.model, {}).get(side.scorer)
        if by_set is None:
            return None
        out = [(name, s_id, s_ood) for name, (s_id, s_ood) in by_set.items()
               if kinds.get(name) == sets.kind and name.endswith(sets.suffix)]
        if out:
            self.used.add((variant, side.group))
        return out or None


def _reduce(name: str):
    return (lambda m: np.ptp(m, axis=-1)) if name == "range" else None


def run_test(res: Results, test: Test, key: jax.Array) -> dict[str, Any]:
    """One test's record: the statistic of a and b, the difference's 95% interval, the verdict."""
    rec: dict[str, Any] = {"test": test.label(), "metric": test.metric, "expect": test.expect}
    groups = {test.a.group} | ({test.b.group} if isinstance(test.b, Side) else set())
    variant = res.variant_for(groups)
    if variant is None:
        return {**rec, "verdict": "not run"}
    rec["variant"] = variant
    a = res.sides(test.a, test.sets, variant)
    b = res.sides(test.b, test.sets_b or test.sets, variant) if isinstance(test.b, Side) else None
    if a is None or (isinstance(test.b, Side) and b is None):
        return {**rec, "verdict": "not run"}
    if b is not None:
        names_a, names_b = [n for n, *_ in a], [n for n, *_ in b]
        if test.sets_b is None and names_a != names_b:  # the same sets, in the same order
            common = [n for n in names_a if n in names_b]
            if not common:
                return {**rec, "verdict": "not run"}
            a, b = [x for x in a if x[0] in common], [x for x in b if x[0] in common]
            b = sorted(b, key=lambda x: common.index(x[0]))
    kw = dict(key=key, metric=test.metric, n=N_RESAMPLES, reduce=_reduce(test.reduce))
    # Each set's own ID scores: a scorer tuned per OOD set scores the ID images once per set.
    if b is None:
        r = metrics.paired_bootstrap([x[1] for x in a], [x[2] for x in a], key=kw.pop("key"), constant=float(test.b),
                                     **kw)
    else:
        r = metrics.paired_bootstrap([x[1] for x in a], [x[2] for x in a], [x[1] for x in b], [x[2] for x in b], **kw)
    rec.update(a=r.a, b=r.b, difference=r.observed, low=r.low, high=r.high, verdict=metrics.verdict(r, test.expect),
               sets=[x[0] for x in a], n_id=int(a[0][1].size), n_ood=[int(x[2].size) for x in a])
    if b is None and test.metric == "auroc":
        rec["reversed"] = 1.0 - r.a  # the same score with its direction flipped
    return rec


def claim_verdict(verdicts: list[str]) -> str:
    """Fixed in advance: confirmed (contradicted, inconclusive) if every test is, 'not run' if a
    test could not run, otherwise mixed with the counts."""
    if not verdicts:
        return "not tested"
    if "not run" in verdicts:
        return "not run"
    if all(v == "confirmed" for v in verdicts):
        return "confirmed"
    if all(v == "contradicted" for v in verdicts):
        return "contradicted"
    if all(v == "inconclusive" for v in verdicts):
        return "inconclusive"
    counts = {v: verdicts.count(v) for v in ("confirmed", "contradicted", "inconclusive")}
    return "mixed (" + ", ".join(f"{n} {v}" for v, n in counts.items() if n) + ")"


def evaluate_claims(res: Results, claims: tuple[Claim, ...] = CLAIMS) -> list[dict[str, Any]]:
    out, i = [], 0
    for c in claims:
        tests = []
        for t in c.tests:
            tests.append(run_test(res, t, jax.random.fold_in(jax.random.key(0), i)))
            i += 1
        out.append({"id": c.id, "paper": c.paper, "where": c.where, "claim": c.statement,
                    "paper_numbers": c.paper_numbers, "analogue": c.analogue, "untested": c.untested,
                    "verdict": claim_verdict([t["verdict"] for t in tests]), "tests": tests})
    return out


def _pct(x: float) -> str:
    return f"{100 * x:.2f}"


def _ours(t: dict[str, Any]) -> str:
    if "a" not in t:
        return t["verdict"]
    b = f"{_pct(t['b'])}" if t.get("b") is not None else ""
    stat = t["metric"] if "range" not in t["test"] else f"range of {t['metric']}"
    rev = f" (reversed direction: {_pct(t['reversed'])})" if "reversed" in t else ""
    return (f"{stat} {_pct(t['a'])} vs {b}, difference {_pct(t['difference'])} "
            f"[{_pct(t['low'])}, {_pct(t['high'])}]{rev}")


def render(results: list[dict[str, Any]], res: Results, command: str) -> str:
    """claims.md: how it was made, the networks, one line per claim, then every test."""
    used = [v for v in res.order if any(u[0] == v for u in res.used)]
    runs = sorted(res.used, key=lambda u: (res.order.index(u[0]), config.GROUPS.index(u[1])))
    lines = [f"# Claims report ({', '.join(used)})", "",
             f"Generated {time.strftime('%Y-%m-%d')} by `{command}`.", "",
             "Each test is a paired bootstrap (1000 resamples of the ID test and OOD images, the same indices for "
             "both scorers) of the metric's difference, a - b, with its 95% percentile interval. The verdict rule was "
             "fixed before any result: *confirmed* if the interval excludes 0 on the claimed side, *contradicted* if "
             "it excludes 0 on the other side, *inconclusive* otherwise. A claim with several tests is confirmed "
             "(contradicted) only if all its tests are; otherwise it is mixed. Metrics in %; FPR95 is ID positive "
             "(the OOD fraction at or above the threshold that keeps 95% of ID images; lower is better). The "
             "intervals cover the sampling of test images, not the training seed: one network per method.", ""]
    lines += ["## What ran where", ""]
    for v in used:
        groups = ", ".join(g for u, g in runs if u == v)
        lines.append(f"- **{v}** (groups {groups}): {config.VARIANT_DATA[v]}.")
    missing = [g for g in config.GROUPS if not any(u[1] == g for u in runs)]
    if missing:
        lines.append(f"- not run: groups {', '.join(missing)}; their claims say *not run*.")
    lines.append(f"- a test reads the {res.variant} runs, or the first of {', '.join(res.order[1:]) or '(none)'} that "
                 "ran both of its sides (a paired test needs the same images); each test names its variant.")
    lines += ["", "## Networks", "", "Seconds: training (0 when an earlier group's finished network is reused) and "
              "scoring, in this group's run.", "",
              "| group (variant) | model | ID test top-1 (%) | training | seconds (train + score) |", "|---|---|---|---|---|"]
    for v, group in runs:
        run = res.runs[(v, group)][2]
        label = f"{group} ({v})"
        cfg, phases = run["config"], run.get("phases", {})
        for spec in cfg["models"]:
            acc = run["id_accuracies"].get(spec["name"])
            train = spec.get("checkpoint") or _train_text(spec.get("train") or cfg["train"], spec, cfg)
            secs = [phases.get(f"{spec['name']}/{p}") for p in ("train", "evaluate")]
            secs_text = " + ".join(f"{x:.0f}" for x in secs if x is not None)
            lines.append(f"| {label} | {spec['name']} | {'' if acc is None else f'{100 * acc:.2f}'} | {train} | "
                         f"{secs_text} |")
    machines = {f"{v}: {_machine(res.runs[(v, g)][2])}" for v, g in runs}
    lines += ["", "Machines: " + "; ".join(sorted(machines, key=lambda m: not m.startswith(res.variant))) + ".", "",
              "The scores come from `python -m experiments.claims --variant V --groups G ... [--epochs N]` per variant "
              "(on a lent GPU machine, `experiments/claims/gpu_claims.sh` runs the groups in a time box); this report "
              "from the command above, which reads them.", "", "## Verdicts", "",
              "| claim | paper | the paper's numbers | ours (a vs b, difference [95% interval]) | verdict |",
              "|---|---|---|---|---|"]
    for c in results:
        ours = "; ".join(_ours(t) for t in c["tests"][:2]) + (f"; ... ({len(c['tests'])} tests)" if len(c["tests"]) > 2
                                                            else "")
        lines.append(f"| {c['id']}: {c['claim']} | {c['paper']}, {c['where']} | {c['paper_numbers']} | "
                     f"{ours or c['untested']} | **{c['verdict']}** |")
    lines += ["", "![Every test's difference with its 95% interval](claims.png)", "", "## Every test", ""]
    for c in results:
        lines += [f"### {c['id']}: {c['claim']} ({c['verdict']})", ""]
        if c["analogue"]:
            lines += [f"Here: {c['analogue']}.", ""]
        if c["untested"]:
            lines += [f"Not tested: {c['untested']}.", ""]
        for t in c["tests"]:
            sets = f"; sets: {', '.join(t['sets'])}" if "sets" in t else ""
            where = f" [{t['variant']}]" if "variant" in t else ""
            lines.append(f"- {t['test']}{where}: {_ours(t)} -> **{t['verdict']}**{sets}")
        lines.append("")
    return "\n".join(lines)


def _train_text(train: dict[str, Any], spec: dict[str, Any], cfg: dict[str, Any]) -> str:
    arch = spec.get("arch") or cfg["arch"]
    what = []
    if spec.get("members"):
        what.append(f"ensemble of {spec['members']}")
    if spec.get("mc_samples"):
        what.append(f"MC-dropout, {spec['mc_samples']} masks")
    if spec.get("anchoring"):
        k = spec["anchoring"]["num_anchors"]
        corr = spec["anchoring"]["training"]["corruptions"]
        what.append(f"anchored, K = {k}, consistency: {', '.join(corr) if corr else 'none'}")
    if spec.get("finetune_from"):
        what.append(f"fine-tuned from {spec['finetune_from']}")
    if spec.get("classes"):
        what.append(f"classes {spec['classes']}")
    return f"{arch}, {train['epochs']} epochs" + (f" ({'; '.join(what)})" if what else "")


def _machine(run: dict[str, Any]) -> str:
    p = run.get("provenance", {})
    pk = p.get("packages", {})
    devices = sorted({d.split(" (")[-1].rstrip(")") for d in p.get("devices", [])})
    git = p.get("git") or {}
    return (f"{', '.join(devices)} ({len(p.get('devices', []))} devices), jax {pk.get('jax')}, flax {pk.get('flax')}, "
            f"{p.get('platform')}, oodjax commit {git.get('commit')}"
            + (" with uncommitted changes" if git.get("dirty") else ""))


def write(results_dir: str | Path, variant: str, out_dir: str | Path, command: str,
          fallback: tuple[str, ...] = ()) -> tuple[Path, list[dict]]:
    """Evaluates every claim on the variant's runs (a group it lacks from the fallback variants')
    and writes out_dir/claims.md and claims.json."""
    res = Results(results_dir, variant, fallback)
    if not res.runs:
        raise FileNotFoundError(f"no runs of variant {variant!r} under {results_dir}/claims_{variant}_*/ (scores.npz "
                                f"and run.json): run `python -m experiments.claims --variant {variant}` first")
    results = evaluate_claims(res)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "claims.json", json.dumps({"variant": variant, "runs": sorted(f"{v}/{g}" for v, g in res.used),
                                                  "command": command,
                                                  "python": platform.python_version(),
                                                  "claims": results}, indent=1))
    plot_tests(results, out / "claims.png",
               f"Paired bootstrap, 95% intervals ({res.variant} runs; [v]: variant v's)", res.variant)
    md = write_atomic(out / "claims.md", render(results, res, command))
    return md, results


def plot_tests(results: list[dict[str, Any]], path: Path, title: str, primary: str = "") -> Path | None:
    """claims.png: every test that ran, its difference turned so that right of 0 supports the claim."""
    rows = []
    for c in results:
        for t in c["tests"]:
            if "low" not in t:
                continue
            sign = 1.0 if t["expect"] == "greater" else -1.0
            lo, hi = sorted((sign * t["low"], sign * t["high"]))
            short = t["test"].split(": ", 1)[1].replace(" on far sets", "").replace(" on covariate sets", "")
            tag = f" [{t['variant']}]" if t.get("variant", primary) != primary else ""
            rows.append({"label": f"{c['id']} {t['metric']}: {short}"[:90] + tag, "value": 100 * sign * t["difference"],
                         "low": 100 * lo, "high": 100 * hi, "verdict": t["verdict"], "group": c["id"]})
    if not rows:
        return None
    return plots.plot_intervals(rows, path, title, "difference in the claimed direction, points of %\n"
                                               "(right of 0 supports the claim)")
