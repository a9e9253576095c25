"""Training-time methods side by side end to end on tiny fake data (oodjax.methods), and the
paper-001 / paper-003/004 configs."""

import json

import pytest

from experiments import run as run_cli
from oodjax.experiment import EmbeddedConfig, OODSpec
from oodjax.methods import Method, MethodsConfig, run_methods
from oodjax.training import VIB, EnergyOE, TrainConfig
from tests.fake_data import make_fake_fashion_mnist


def test_methods_run_end_to_end(tmp_path):
    d = make_fake_fashion_mnist(tmp_path / "fm", n_train=400, n_test=120)
    base = EmbeddedConfig(
        name="tiny", data_dir=str(d), val_size=80, fit_size=100, far_sets=("gaussian_noise", "textures"),
        resize_sets=False, corruptions=(), ood_test_size=50, near_ood_classes=None, progress=False, plots=False,
        train=TrainConfig(epochs=2, batch_size=32),
    )
    methods = {
        "baseline": Method({"MSP": ("msp", {}), "Flow emb +OOD": ("flow", {"steps": 30, "hidden": 16, "ood_weight": 1.0})}),
        "viby": Method({"VIBY-I": ("viby_i", {}), "VIBY-II": ("viby_ii", {})}, head="viby", head_kwargs={"z": 8},
                       objective=VIB(0.01)),
        "energy_oe": Method({"Energy OE": ("energy", {})}, objective=EnergyOE(m_in=-8.0, m_out=-3.0), outliers=True,
                            finetune_from="baseline", train=TrainConfig(epochs=1, batch_size=32, learning_rate=0.005)),
        "ensemble": Method({"Ens EPKL": ("ens_epkl", {})}, members=2),
    }
    cfg = MethodsConfig(base=base, methods=methods, name="tiny_methods", results_dir=str(tmp_path / "results"),
                        outliers=OODSpec("auxiliary_outliers"), outlier_size=100)
    result = run_methods(cfg)
    out = tmp_path / "results" / "tiny_methods"
    records = json.loads((out / "metrics.json").read_text())
    assert {r["scorer"] for r in records} == {"MSP", "Flow emb +OOD", "VIBY-I", "VIBY-II", "Energy OE", "Ens EPKL"}
    assert {r["ood_set"] for r in records} == {"gaussian_noise", "textures"}
    assert set(result["id_accuracies"]) == set(methods)
    assert result["id_accuracies"]["baseline"] > 0.5  # the fake classes are easy
    table = (out / "table.md").read_text()
    assert "| Det.Err |" in table and "| VIBY-II | textures |" in table and "| ensemble |" in table
    fingerprint = json.loads((out / "train_energy_oe" / "train_run.json").read_text())
    assert "init_variables" in fingerprint and "EnergyOE" in fingerprint["objective"]
    assert (out / "train_ensemble_m1" / "checkpoints").exists()


def test_methods_config_errors(tmp_path):
    base = EmbeddedConfig(name="x")
    with pytest.raises(ValueError, match="not an earlier method"):
        MethodsConfig(base=base, methods={"oe": Method({}, finetune_from="baseline")})
    with pytest.raises(ValueError, match="set MethodsConfig.outliers"):
        MethodsConfig(base=base, methods={"oe": Method({}, objective=EnergyOE(), outliers=True)})
    with pytest.raises(ValueError, match="does not fit the objective"):
        Method({}, objective=EnergyOE())
    with pytest.raises(ValueError, match="members must be 0"):
        Method({}, members=1)
    with pytest.raises(ValueError, match="mc_samples must be 0"):
        Method({}, mc_samples=1)


@pytest.mark.parametrize("path", ["experiments/configs/survey_table1.py", "experiments/configs/uncertainty.py"])
@pytest.mark.parametrize("variant", ["default", "small", "cifar10"])
def test_method_configs_load(path, variant):
    cfg = run_cli.load_config(path, variant)
    assert isinstance(cfg, MethodsConfig) and "baseline" in cfg.methods
