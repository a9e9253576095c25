"""AMP experiments end to end on tiny data: the embedded run with an anchored model, a tfds
benchmark (mock data), the Table 8 ablation, and every paper config loads."""

import dataclasses
import json

import numpy as np
import pytest
from PIL import Image

from experiments import run as run_cli
from experiments.configs import amp_ablation, embedded
from oodjax.experiment import Anchoring, EmbeddedData, Experiment, ModelSpec, OODSpec, TfdsData, run
from oodjax.anchoring import AnchoredTraining
from oodjax.training import TrainConfig
from tests.fake_data import make_fake_fashion_mnist

AMP_SPEC = {"amp": ("amp", {}), "amp_tau_mean": ("amp", {"reduce": "mean"}), "amp_tau": ("amp_tau", {}),
            "anchored_msp": ("msp", {})}


def test_embedded_run_with_anchoring(tmp_path):
    d = make_fake_fashion_mnist(tmp_path / "fm", n_train=868, n_test=200)
    cfg = Experiment(
        name="tiny", results_dir=str(tmp_path / "results"), fit_size=300, progress=False, batch_size=100,
        data=EmbeddedData(data_dir=str(d), val_size=100, far_sets=("gaussian_noise",), resize_sets=True,
                          corruptions=("gaussian_blur",), corruption_size=60, ood_test_size=60),
        models=embedded.models({"msp": ("msp", {}), "energy": ("energy", {})}, AMP_SPEC,
                               anchoring=Anchoring(AnchoredTraining(every=2), num_anchors=3)),
        train=TrainConfig(epochs=3, batch_size=32), views=("summary", "table", "plots", "table7", "fig5"),
    )
    result = run(cfg)
    acc = result["id_accuracies"]
    assert set(acc) == {"all_classes", "all_classes_anchored", "heldout", "heldout_anchored"}
    assert acc["all_classes_anchored"] > 0.8  # anchoring keeps the easy fake classes learnable
    out = tmp_path / "results" / "tiny"
    records = json.loads((out / "metrics.json").read_text())
    assert {r["scorer"] for r in records} == {"msp", "energy", *AMP_SPEC}
    assert {r["ood_set"] for r in records if r["scorer"] == "amp"} == {r["ood_set"] for r in records}
    summary = (out / "summary.md").read_text()
    assert "| all_classes_anchored |" in summary and "| amp | far (avg of 1) |" in summary
    assert "| amp |" in (out / "table7.md").read_text()
    for name in ("fig5b_auroc_vs_severity.png", "fig5a_densities_amp.png", "roc_amp.png"):
        assert (out / "plots" / name).exists(), name


def _write_folder(path, n, seed):
    path.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(path / f"{i}.png")


def test_benchmark_with_mock_tfds_and_a_folder(tmp_path):
    import tensorflow_datasets as tfds

    _write_folder(tmp_path / "lsun", 12, 0)
    cfg = Experiment(
        name="mock", results_dir=str(tmp_path / "results"), arch="small_cnn",
        model_kwargs={"widths": (4, 8), "feature_dim": 8}, fit_size=32,
        data=TfdsData("cifar10", data_dir="/nonexistent", val_size=16, ood=(
            OODSpec("svhn"), OODSpec("LSUN-nearest", folder=str(tmp_path / "lsun"), resample="nearest", kind="resize"),
            OODSpec("gaussian_noise", size=20))),
        models=(ModelSpec("cifar10", {"msp": ("msp", {}), "odin": ("odin", {"temperatures": (1.0,),
                                                                             "epsilons": (0.0,)})}),
                ModelSpec("cifar10_anchored", {"amp": ("amp", {})}, fit_size=1000, val_size=1000,
                          anchoring=Anchoring(num_anchors=2, per_sample=True, pool_size=8))),
        train=TrainConfig(epochs=1, batch_size=16), batch_size=16, progress=False, views=("summary", "table7"),
    )
    with tfds.testing.mock_data(num_examples=48):
        result = run(cfg)
    assert set(result["id_accuracies"]) == {"cifar10", "cifar10_anchored"}
    records = result["records"]
    assert {(r["scorer"], r["ood_set"]) for r in records} == {
        (s, o) for s in ("msp", "odin", "amp") for o in ("svhn", "LSUN-nearest", "gaussian_noise")}
    assert all(0.0 <= r["auroc"] <= 1.0 for r in records)
    assert (tmp_path / "results" / "mock" / "table7.md").exists()


def test_amp_ablation_table8(tmp_path):
    d = make_fake_fashion_mnist(tmp_path / "fm", n_train=500, n_test=120)
    cfg = Experiment(
        name="t8", results_dir=str(tmp_path / "results"), progress=False, views=("table8",),
        data=EmbeddedData(data_dir=str(d), val_size=100, far_sets=("gaussian_noise", "digits"), resize_sets=False,
                          corruptions=(), ood_test_size=100),
        models=tuple(dataclasses.replace(m, ood_sets=("digits",)) for m in amp_ablation.ablation_models(
            {"none": (), "resized_crop": ("resized_crop",)}, (2, 3))),
        train=TrainConfig(epochs=1, batch_size=32),
    )
    result = run(cfg)
    table = (tmp_path / "results" / "t8" / "table8.md").read_text()
    assert "| corruption | 2 | 3 |" in table and "| none |" in table and "| resized_crop |" in table
    assert len(result["records"]) == 2 * 2 and {r["ood_set"] for r in result["records"]} == {"digits"}
    assert sorted(p.name for p in (tmp_path / "results" / "t8").glob("train_*")) == [
        "train_anchored_none", "train_anchored_resized_crop"]  # one training per row, shared by the K columns
    bad = dataclasses.replace(cfg, models=(dataclasses.replace(cfg.models[0], ood_sets=("svhn",)),))
    with pytest.raises(ValueError, match="not in the experiment"):
        run(bad)


def test_amp_configs_load():
    paper = __import__("experiments.configs.amp_paper", fromlist=["VARIANTS"])
    for variant in paper.VARIANTS:
        cfg = run_cli.load_config("experiments/configs/amp_paper.py", variant)
        assert isinstance(cfg, Experiment) and cfg.models[1].anchoring is not None
    t3 = run_cli.load_config("experiments/configs/amp_paper.py", "table3_cifar10")
    t7 = run_cli.load_config("experiments/configs/amp_paper.py", "table7_cifar10")
    assert t3.train_dir == t7.train_dir and t3.arch == "resnet34"  # Table 7 reuses Table 3's models
    assert [s.resample for s in t7.data.ood] == ["nearest", "bilinear", "bicubic", "lanczos"]
    for variant in ("default", "small", "cifar10"):
        cfg = run_cli.load_config("experiments/configs/amp_ablation.py", variant)
        assert sorted({m.anchoring.num_anchors for m in cfg.models}) == [2, 5, 10, 20]
        assert list(dict.fromkeys(m.tags["corruption"] for m in cfg.models)) == [
            "none", "color_jitter+gaussian_blur", "horizontal_flip+grayscale", "resized_crop"]
    demo = run_cli.load_config("experiments/configs/embedded.py", "default")
    assert demo.models[1].anchoring is not None and demo.models[1].anchoring.num_anchors == 5
    with pytest.raises(ValueError, match="unknown variant"):
        run_cli.load_config("experiments/configs/amp_paper.py", "table9")
