"""The claims report (experiments/claims): every claim names scorers its configs have, the verdicts
on scores made to have a known answer, and one group end to end on the tiny variant."""

import dataclasses
import json

import numpy as np
import pytest

from experiments.claims import __main__ as claims_main
from experiments.claims import config, report
from experiments.claims.claims import CLAIMS, Side
from oodjax import metrics
from oodjax.experiment import validate
from oodjax.experiment.report import Report
from oodjax.experiment.views import get as get_view
from oodjax.experiment.views import read_scores


def _scorers(exp, model):
    spec = {m.name: m for m in exp.models}.get(model)
    assert spec is not None, f"{exp.name} has no model {model!r}"
    return spec.scorers


@pytest.mark.parametrize("variant", ["gpu", "cpu", "tiny", "cifar10", "cifar100", "imagenet"])
def test_every_claim_names_a_model_and_scorer_of_its_group(variant):
    groups = ("002", "004") if variant == "imagenet" else config.GROUPS
    exps = {g: config.get_config(variant, g) for g in groups}
    for g, exp in exps.items():
        if variant != "imagenet":  # (its checkpoint file is a user's download; test_imagenet_configs builds it)
            validate(exp, check_data=variant in ("gpu", "cpu", "tiny"))
    sides = [s for c in CLAIMS for t in c.tests for s in (t.a, t.b) if isinstance(s, Side)]
    assert len(sides) > 40
    for s in sides:
        if s.group in exps:
            assert s.scorer in _scorers(exps[s.group], s.model), (variant, s)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown variant"):
        config.get_config("tpu")
    with pytest.raises(ValueError, match="unknown group"):
        config.get_config("gpu", "005")
    with pytest.raises(ValueError, match="epochs must be"):
        config.get_config("gpu", "000", epochs=0)
    with pytest.raises(ValueError, match="groups 002 and 004 only"):
        config.get_config("imagenet", "000")
    assert config.get_config("gpu", "000", epochs=3).train.epochs == 3
    survey = {m.ood_sets for m in config.get_config("cifar10", "001").models}  # paper 001's sets, not noise alone
    assert survey == {("svhn", "dtd", "places365", "gaussian_noise")}
    for argv in (["--groups", "005"], ["--epochs", "0"], ["--variant", "tpu"], ["--variant", "imagenet", "--groups", "000"]):
        with pytest.raises(SystemExit):  # argparse's message, before any work
            claims_main.main(argv)


def _fake_runs(root, shift):
    """Saved runs of every tiny group whose scores are N(shift(model, scorer), 1) on ID and N(0, 1) on
    OOD, 400 of each, written through the real `scores` view."""
    rng = np.random.default_rng(0)
    for g in config.GROUPS:
        exp = config.get_config("tiny", g)
        kinds = {n: "far" for n in exp.data.far_sets}
        kinds |= {f"digits_{m}": "resize" for m in ("nearest", "bilinear", "bicubic", "lanczos")}
        kinds |= {f"fmnist-gaussian_blur-{s}": "covariate" for s in range(1, 6)}
        model_scores, records = {}, []
        for m in exp.models:
            sets = {"fmnist-heldout-classes": "near"} if m.classes else kinds
            model_scores[m.name] = {}
            for label in m.scorers:
                s_id = rng.normal(shift(m.name, label), 1.0, 400)
                tuned = label in ("odin", "ODIN")  # tuned per set: other ID scores for each set
                model_scores[m.name][label] = {
                    n: (rng.normal(shift(m.name, label), 1.0, 400) if tuned else s_id, rng.normal(0.0, 1.0, 400))
                    for n in sets}
                records += [{"model": m.name, "scorer": label, "ood_set": n, "kind": k} for n, k in sets.items()]
        out = root / exp.name
        out.mkdir(parents=True)
        get_view("scores")(Report(exp, records, {}, {}, out, model_scores))
        (out / "metrics.json").write_text(json.dumps(records))
        (out / "run.json").write_text(json.dumps(
            {"config": dataclasses.asdict(exp), "id_accuracies": {m.name: 0.9 for m in exp.models}, "seconds": 1.0,
             "phases": {}, "provenance": {"devices": ["cpu:0 (cpu)"], "packages": {"jax": "x"}}}, default=str))


def test_verdicts_on_scores_with_a_known_answer(tmp_path):
    strong = {"amp", "ODIN", "rg", "U=energy V=clipped", "G", "SG", "VIBY-I", "VIBY-II"}

    def shift(model, scorer):
        if scorer == "BINC":
            return 0.2  # worse than BIN: contradicts 001-binc
        if scorer == "eq4_G":
            return -1.0  # lower on ID: contradicts 002-eq4
        if model == "anchored_k2":
            return 2.0  # K = 20 is the same network as K = 2 here: inconclusive
        return 2.0 if scorer in strong or model == "anchored_k20" else 1.0

    _fake_runs(tmp_path, shift)
    md, results = report.write(tmp_path, "tiny", tmp_path / "claims", "test")
    v = {c["id"]: c["verdict"] for c in results}
    assert v["000-T3"] == "confirmed" and v["002-rg"] == "confirmed" and v["004-near"] == "confirmed"
    assert v["001-binc"] == "contradicted" and v["002-eq4"] == "contradicted"
    assert v["004-ece"] == "not tested"
    eq4 = next(c for c in results if c["id"] == "002-eq4")["tests"][0]
    assert eq4["a"] < 0.5 and eq4["reversed"] == pytest.approx(1 - eq4["a"])
    t3 = next(c for c in results if c["id"] == "000-T3")["tests"][0]  # the record is the bootstrap of those scores
    assert t3["low"] <= t3["difference"] <= t3["high"] < 0
    assert set(t3["sets"]) == set(config.get_config("tiny", "000").data.far_sets)
    odin = next(c for c in results if c["id"] == "000-T3")["tests"][1]  # each set against its own ID scores
    saved = read_scores(tmp_path / "claims_tiny_000" / "scores.npz")["plain"]["odin"]
    assert odin["b"] == pytest.approx(np.mean([metrics.ood_metrics(*saved[n])["fpr95"] for n in odin["sets"]]))
    text = md.read_text()
    assert "FPR95 is ID positive" in text and "**contradicted**" in text and "| 000-T3:" in text
    assert (tmp_path / "claims" / "claims.png").stat().st_size > 10000 and "(claims.png)" in text
    assert json.loads((tmp_path / "claims" / "claims.json").read_text())["claims"][0]["id"] == "000-T3"
    # A missing group: its claims are "not run", the others unchanged.
    for f in (tmp_path / "claims_tiny_ensembles").iterdir():
        f.unlink()
    v2 = {c["id"]: c["verdict"] for c in report.write(tmp_path, "tiny", tmp_path / "c2", "test")[1]}
    assert v2["000-T5"] == "not run" and v2["000-T3"] == "confirmed"
    with pytest.raises(FileNotFoundError, match="python -m experiments.claims --variant gpu"):
        report.write(tmp_path, "gpu", tmp_path / "c3", "test")
    # A variant without runs reads its fallback's, and each test names the variant it read.
    v3 = report.write(tmp_path, "gpu", tmp_path / "c4", "test", fallback=("tiny",))[1]
    t3 = next(c for c in v3 if c["id"] == "000-T3")
    assert t3["verdict"] == "confirmed" and {t["variant"] for t in t3["tests"]} == {"tiny"}


def test_claim_verdict_rule():
    assert report.claim_verdict(["confirmed", "confirmed"]) == "confirmed"
    assert report.claim_verdict(["contradicted"]) == "contradicted"
    assert report.claim_verdict(["inconclusive"]) == "inconclusive"
    assert report.claim_verdict(["confirmed", "inconclusive", "contradicted"]) == \
        "mixed (1 confirmed, 1 contradicted, 1 inconclusive)"
    assert report.claim_verdict(["confirmed", "not run"]) == "not run"


def test_one_group_end_to_end(tmp_path):
    """Group 002 of the tiny variant: trains, scores, saves scores.npz; the report tests its claims and
    marks the others as not run."""
    argv = ["--variant", "tiny", "--groups", "002", "--results-dir", str(tmp_path), "--out", str(tmp_path / "claims"),
            "--no-progress"]
    assert claims_main.main(argv) == 0
    run_dir = tmp_path / "claims_tiny_002"
    saved = read_scores(run_dir / "scores.npz")
    records = json.loads((run_dir / "metrics.json").read_text())
    for r in records[:5]:  # the saved samples give the reported metrics
        s_id, s_ood = saved[r["model"]][r["scorer"]][r["ood_set"]]
        assert metrics.ood_metrics(s_id, s_ood)["auroc"] == pytest.approx(r["auroc"])
    results = json.loads((tmp_path / "claims" / "claims.json").read_text())["claims"]
    v = {c["id"]: c["verdict"] for c in results}
    assert all(v[c] not in ("not run", "not tested") for c in ("002-rg", "002-uv", "002-eq4"))
    assert v["000-T3"] == "not run"
    assert (tmp_path / "claims_tiny" / "train" / "train_plain").is_dir()  # the shared training directory
