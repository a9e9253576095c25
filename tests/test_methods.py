"""Training-time methods side by side end to end on tiny fake data (models of one Experiment),
and the paper-001 / paper-003/004 configs."""

import json

import numpy as np
import pytest
from PIL import Image

from experiments import run as run_cli
from oodjax import data
from oodjax.experiment import EmbeddedData, Experiment, ModelSpec, OODSpec, TfdsData, run
from oodjax.training import BIN, VIB, EnergyOE, TrainConfig
from tests.fake_data import build_tiny_tfds, make_fake_fashion_mnist


def test_methods_run_end_to_end(tmp_path):
    d = make_fake_fashion_mnist(tmp_path / "fm", n_train=400, n_test=120)
    models = (
        ModelSpec("baseline", {"MSP": ("msp", {}),
                               "Flow emb +OOD": ("flow", {"steps": 30, "hidden": 16, "ood_weight": 1.0})}),
        ModelSpec("bin", {"BIN": ("bin", {})}, objective=BIN(zeta=0.05)),  # needs objective:bin, from its training
        ModelSpec("viby", {"VIBY-I": ("viby_i", {}), "VIBY-II": ("viby_ii", {})}, head="viby", head_kwargs={"z": 8},
                  objective=VIB(0.01)),
        ModelSpec("energy_oe", {"Energy OE": ("energy", {})}, objective=EnergyOE(m_in=-8.0, m_out=-3.0), outliers=True,
                  finetune_from="baseline", train=TrainConfig(epochs=1, batch_size=32, learning_rate=0.005)),
        ModelSpec("ensemble", {"Ens EPKL": ("ens_epkl", {})}, members=2),
        ModelSpec("mc_dropout", {"MC MI": ("ens_mutual_information", {})}, model_kwargs={"dropout": 0.3}, mc_samples=3),
    )
    cfg = Experiment(
        name="tiny_methods", data=EmbeddedData(data_dir=str(d), val_size=80, far_sets=("gaussian_noise", "textures"),
                                               resize_sets=False, corruptions=(), ood_test_size=50),
        models=models, fit_size=100, progress=False, results_dir=str(tmp_path / "results"), batch_size=50,
        outliers=OODSpec("auxiliary_outliers"), outlier_size=100, train=TrainConfig(epochs=2, batch_size=32),
        views=("methods_table",), metrics=("fpr95", "detection_error", "auroc"), title="Tiny")
    result = run(cfg)
    out = tmp_path / "results" / "tiny_methods"
    records = json.loads((out / "metrics.json").read_text())
    assert {r["scorer"] for r in records} == {"MSP", "Flow emb +OOD", "BIN", "VIBY-I", "VIBY-II", "Energy OE",
                                              "Ens EPKL", "MC MI"}
    assert {r["ood_set"] for r in records} == {"gaussian_noise", "textures"}
    assert set(result["id_accuracies"]) == {m.name for m in models}
    assert result["id_accuracies"]["baseline"] > 0.5  # the fake classes are easy
    table = (out / "table.md").read_text()
    assert table.startswith("Tiny") and "| Det.Err |" in table and "| VIBY-II | textures |" in table
    assert "| ensemble |" in table
    fingerprint = json.loads((out / "train_energy_oe" / "train_run.json").read_text())
    assert "init_variables" in fingerprint and "EnergyOE" in fingerprint["objective"]
    assert (out / "train_ensemble_m1" / "checkpoints").exists()


def test_embedded_data_with_a_folder_outlier_set(tmp_path):
    """An embedded experiment can take its outlier set from an image folder (the images are
    resized to the embedded suite's 28 x 28 x 1; this raised AttributeError before)."""
    d = make_fake_fashion_mnist(tmp_path / "fm", n_train=200, n_test=60)
    folder = tmp_path / "outliers"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    cfg = Experiment(
        name="folder_outliers", results_dir=str(tmp_path / "results"), progress=False, views=(), fit_size=50,
        data=EmbeddedData(data_dir=str(d), val_size=40, far_sets=("gaussian_noise",), resize_sets=False,
                          corruptions=()),
        models=(ModelSpec("m", {"Flow +OOD": ("flow", {"steps": 10, "hidden": 8, "ood_weight": 1.0})}),),
        outliers=OODSpec("folder", folder=str(folder)), train=TrainConfig(epochs=1, batch_size=16))
    result = run(cfg)
    assert {r["model"] for r in result["records"]} == {"m"} and np.isfinite(result["records"][0]["auroc"])


def test_experiment_config_errors():
    data = EmbeddedData()
    with pytest.raises(ValueError, match="not an earlier model"):
        Experiment(name="x", data=data, models=(ModelSpec("oe", {}, finetune_from="baseline"),))
    with pytest.raises(ValueError, match="set Experiment.outliers"):
        Experiment(name="x", data=data, models=(ModelSpec("oe", {}, objective=EnergyOE(), outliers=True),))
    with pytest.raises(ValueError, match="does not fit the objective"):
        ModelSpec("m", {}, objective=EnergyOE())
    with pytest.raises(ValueError, match="members must be 0"):
        ModelSpec("m", {}, members=1)
    with pytest.raises(ValueError, match="mc_samples must be 0"):
        ModelSpec("m", {}, mc_samples=1)
    with pytest.raises(ValueError, match="has no models"):
        Experiment(name="x", data=data, models=())
    from oodjax.experiment import validate

    with pytest.raises(ValueError, match=r"needs \['objective:bin'\].*trained with that objective"):
        validate(Experiment(name="x", data=data, models=(ModelSpec("m", {"BIN": ("bin", {})}),)))
    with pytest.raises(ValueError, match=r"needs \['outliers'\].*set Experiment.outliers"):
        validate(Experiment(name="x", data=data, models=(ModelSpec("m", {"f": ("flow", {"ood_weight": 1.0})}),)))


@pytest.mark.parametrize("path", ["experiments/configs/survey_table1.py", "experiments/configs/uncertainty.py"])
@pytest.mark.parametrize("variant", ["default", "small", "cifar10"])
def test_method_configs_load(path, variant):
    from oodjax.experiment import validate

    import tensorflow_datasets as tfds

    cfg = run_cli.load_config(path, variant)
    assert isinstance(cfg, Experiment) and cfg.models[0].name == "baseline"
    validate(cfg, check_data=False)  # every scorer exists and its needs are met by its model
    if isinstance(cfg.data, TfdsData):  # its tfds names exist (checked under mock_data: no data needed)
        named = [(o.name, o.split) for o in cfg.data.ood if o.folder is None and o.name not in data.SYNTHETIC]
        with tfds.testing.mock_data(num_examples=1):
            for name, split in [(cfg.data.id_dataset, None), *named]:
                data.check_prepared(name, split)


def test_validate_checks_every_dataset_before_any_work(tmp_path):
    from oodjax.experiment import validate

    name = build_tiny_tfds(tmp_path / "tfds")
    d = str(tmp_path / "tfds")
    model = (ModelSpec("m", {"msp": ("msp", {})}),)

    def exp(**kw):
        return Experiment(name="x", models=model, data=TfdsData(**{"id_dataset": name, "data_dir": d, **kw}))

    with pytest.raises(ValueError, match="has no split 'validation'"):
        validate(exp(ood=(OODSpec(name, split="validation"),)))
    with pytest.raises(FileNotFoundError, match="'svhn_cropped' is not prepared: looked in"):
        validate(exp(ood=(OODSpec("svhn"),)))
    with pytest.raises(FileNotFoundError, match="image folder '/nowhere/lsun' does not exist"):
        validate(exp(ood=(OODSpec("LSUN", folder="/nowhere/lsun"),)))
    with pytest.raises(ValueError, match="unknown dataset 'cifar_10'"):
        validate(exp(id_dataset="cifar_10"))
    validate(exp(ood=(OODSpec(name, split="test"), OODSpec("gaussian_noise"))))  # all there
