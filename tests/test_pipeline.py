"""Model, training and the embedded experiment end to end on small fake data."""

import dataclasses
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments import run as run_cli
from oodjax import metrics
from oodjax.experiment import EmbeddedData, Experiment, ModelSpec, normalize, run
from oodjax.models import small_cnn
from oodjax.training import TrainConfig, train
from tests.fake_data import make_fake_fashion_mnist


def test_small_cnn(key):
    model = small_cnn(10)
    variables = model.init(key)
    n_params = sum(p.size for p in jax.tree_util.tree_leaves(variables["params"]))
    assert 100_000 < n_params < 130_000
    logits, features = model.apply(variables, jnp.zeros((3, 28, 28, 1)))
    assert logits.shape == (3, 10) and features.shape == (3, 128)
    head = model.head(variables)
    np.testing.assert_allclose(features @ head.kernel + head.bias[None, :], logits, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="expected images of shape"):
        model.apply(variables, jnp.zeros((3, 28, 28, 3)))
    anchored = small_cnn(10, in_channels=2)
    assert anchored.apply(anchored.init(key), jnp.zeros((2, 28, 28, 2)))[0].shape == (2, 10)


def test_training_learns(key, tmp_path):
    from oodjax.data import load_fashion_mnist

    d = make_fake_fashion_mnist(tmp_path, n_train=512, n_test=10)
    x, y = load_fashion_mnist("train", d)
    x = normalize(x)
    cfg = TrainConfig(epochs=3, batch_size=32, learning_rate=0.05)
    _, log = train(small_cnn(10), x, y, cfg, key=key, progress=False)
    epochs = [r for r in log if "epoch_loss" in r]
    assert len(epochs) == 3 and epochs[-1]["epoch_loss"] < 0.5 * epochs[0]["epoch_loss"]


def test_embedded_experiment_end_to_end(tmp_path):
    d = make_fake_fashion_mnist(tmp_path / "fm", n_train=868, n_test=200)
    scorers = {"msp": ("msp", {}), "energy": ("energy", {}), "mahalanobis": ("mahalanobis", {}),
               "knn": ("knn", {"k": 5}), "vim": ("vim", {}), "gram": ("gram", {"powers": (1, 2)}),
               "odin": ("odin", {"temperatures": (1.0, 1000.0), "epsilons": (0.0, 0.002)})}
    cfg = Experiment(
        name="tiny", results_dir=str(tmp_path / "results"), fit_size=300, progress=False, batch_size=100,
        plot_workers=None,  # one process per CPU draws the figures
        data=EmbeddedData(data_dir=str(d), val_size=100, far_sets=("digits", "gaussian_noise"), resize_sets=False,
                          corruptions=("gaussian_blur",), corruption_size=60, ood_test_size=100),
        models=(ModelSpec("all_classes", scorers), ModelSpec("heldout", scorers, classes=(0, 1, 2, 3, 4))),
        train=TrainConfig(epochs=3, batch_size=32),
    )
    result = run(cfg)
    assert result["id_accuracies"]["all_classes"] > 0.9  # the fake classes are easy
    out = tmp_path / "results" / "tiny"
    records = json.loads((out / "metrics.json").read_text())
    sets = {"digits", "gaussian_noise", *(f"fmnist-gaussian_blur-{s}" for s in range(1, 6)), "fmnist-heldout-classes"}
    assert {r["ood_set"] for r in records} == sets and len(records) == 7 * len(sets)
    for r in records:
        for k in (*metrics.METRIC_NAMES, "id_accuracy"):
            assert 0.0 <= r[k] <= 1.0, (r["scorer"], k)
    near = [r for r in records if r["kind"] == "near"]
    assert near and near[0]["id_accuracy"] == result["id_accuracies"]["heldout"] and near[0]["model"] == "heldout"
    table = (out / "table.md").read_text()
    assert "| mahalanobis | far (avg of 2) |" in table and "| average |" not in table  # per kind, never across
    assert "| FPR95 (ID+) | FPR95 (OOD+) |" in table
    assert "| odin | covariate (avg of 5) |" in (out / "summary.md").read_text()
    assert (out / "table.csv").read_text().startswith("scorer,ood_set,fpr95,fpr95_ood_positive")
    assert "| all_classes | odin | digits | temperature = " in (out / "tuned.md").read_text()
    terminal = result["summary"].splitlines()
    assert len(terminal) <= 30 and terminal[1].startswith("  far (2 sets): ")
    assert (out / "plots" / "auroc_vs_severity.png").exists() and (out / "plots" / "roc_odin.png").exists()
    run_json = json.loads((out / "run.json").read_text())
    assert run_json["id_accuracies"]["all_classes"] == result["id_accuracies"]["all_classes"]
    assert {"all_classes/train", "heldout/evaluate", "data", "report"} <= set(run_json["phases"])
    prov = run_json["provenance"]
    assert prov["packages"]["jax"] == jax.__version__ and prov["devices"] and "commit" in prov["git"]


def test_cli_lists_and_runs_a_subset_of_scorers(capsys):
    assert run_cli.main(["--list", "scorers"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("odin ") and "needs inputs, model" in line for line in lines)
    exp = run_cli.load_config("experiments/configs/uncertainty.py", "small")
    sub = run_cli.only_scorers(exp, ["Energy OE"])
    assert [m.name for m in sub.models] == ["baseline", "energy_oe"]  # baseline kept: energy_oe fine-tunes it
    assert sub.models[0].scorers == {} and list(sub.models[1].scorers) == ["Energy OE"]
    with pytest.raises(SystemExit, match="not scorer labels"):
        run_cli.only_scorers(exp, ["nope"])


def test_config_errors_come_before_any_work(tmp_path):
    """A typo'd scorer, a need no model provides, an unknown view: errors before data or training."""
    d = make_fake_fashion_mnist(tmp_path / "fm", n_train=100, n_test=20)
    base = Experiment(name="x", results_dir=str(tmp_path / "results"), progress=False,
                      data=EmbeddedData(data_dir=str(d), val_size=20), models=(ModelSpec("m", {"msp": ("msp", {})}),))
    with pytest.raises(KeyError, match="unknown scorer 'mps'"):
        run(dataclasses.replace(base, models=(ModelSpec("m", {"x": ("mps", {})}),)))
    with pytest.raises(ValueError, match=r"scorer 'amp' needs \['samples'\], which model 'm' does not provide"):
        run(dataclasses.replace(base, models=(ModelSpec("m", {"amp": ("amp", {})}),)))
    with pytest.raises(KeyError, match="unknown report view 'tabel'"):
        run(dataclasses.replace(base, views=("tabel",)))
    with pytest.raises(ValueError, match="model names must be unique"):
        dataclasses.replace(base, models=(ModelSpec("m"), ModelSpec("m")))
    assert not (tmp_path / "results" / "x").exists()  # nothing trained, nothing written
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ValueError, match="training directory .*a_file/x is not writable .*: choose another one"):
        run(dataclasses.replace(base, results_dir=str(tmp_path / "a_file")))  # before any data or training
    from oodjax.files import RunLock
    with RunLock(tmp_path / "results" / "x", "run of this experiment"):  # another live run of it
        with pytest.raises(ValueError, match=r"results/x is in use by another run of this experiment \(pid \d+"):
            run(base)


def test_cli_reports_missing_data(tmp_path, capsys):
    code = run_cli.main(["experiments/configs/embedded.py", "--variant", "small", "--data-dir", str(tmp_path)])
    assert code == 2
    assert "apt-get install dataset-fashion-mnist" in capsys.readouterr().err


def test_configs_load():
    for variant in ("default", "small"):
        cfg = run_cli.load_config("experiments/configs/embedded.py", variant)
        assert isinstance(cfg, Experiment)
    with pytest.raises(ValueError, match="unknown variant"):
        run_cli.load_config("experiments/configs/embedded.py", "huge")
    ablation = run_cli.load_config("experiments/configs/rg_ablation.py", "default")
    default = run_cli.load_config("experiments/configs/embedded.py", "default")
    assert ablation.train_dir == "results/embedded" and ablation.train == default.train  # reuses the demo's model
    assert [m.name for m in ablation.models] == ["all_classes"] == [m.name for m in default.models][:1]
    from oodjax.evaluate import build_scorers

    assert len(build_scorers(ablation.models[0].scorers)) == 8 + 9 + 8 + 7  # Tables 2-5 of paper 002
    assert dataclasses.replace(cfg, seed=3).seed == 3


def test_a_tfds_experiment_streams_and_equals_the_in_memory_run(tmp_path):
    """The same tfds dataset stored as ArrayRecord (read by index, batch by batch) and as TFRecord
    (read into memory) gives the same records: training, held-out classes, anchors, fit fraction."""
    from oodjax.experiment import Anchoring, OODSpec, TfdsData
    from tests.fake_data import build_tiny_tfds

    name = build_tiny_tfds(tmp_path / "ar", n_train=200, n_test=60, size=8)
    build_tiny_tfds(tmp_path / "tfr", n_train=200, n_test=60, size=8, file_format="tfrecord")

    def cfg(fmt):
        return Experiment(
            name=fmt, results_dir=str(tmp_path / "results"), arch="small_cnn", progress=False, views=(),
            model_kwargs={"widths": (4, 8), "feature_dim": 8}, fit_size=0.5, batch_size=16,
            data=TfdsData(name, data_dir=str(tmp_path / fmt), image_size=8, val_size=60, test_size=48,
                          normalization=((0.45,) * 3, (0.25,) * 3), ood=(OODSpec("gaussian_noise", size=20),)),
            models=(ModelSpec("m", {"msp": ("msp", {}), "knn": ("knn", {"k": 3})}),
                    ModelSpec("near", {"msp": ("msp", {})}, classes=(0, 1, 2)),
                    ModelSpec("anc", {"amp": ("amp", {})}, anchoring=Anchoring(num_anchors=2))),
            train=TrainConfig(epochs=1, batch_size=16))

    streamed, in_memory = run(cfg("ar")), run(cfg("tfr"))
    key = lambda r: (r["model"], r["scorer"], r["ood_set"])  # noqa: E731
    a, b = sorted(streamed["records"], key=key), sorted(in_memory["records"], key=key)
    assert [key(r) for r in a] == [key(r) for r in b] and len(a) == 4
    for ra, rb in zip(a, b):
        for m in metrics.METRIC_NAMES:
            assert abs(ra[m] - rb[m]) < 1e-5, (key(ra), m)
    assert streamed["id_accuracies"] == pytest.approx(in_memory["id_accuracies"], abs=1e-6)


def test_embedded_data_takes_a_folder_of_ones_own_ood_images(tmp_path):
    from PIL import Image

    from oodjax.experiment import OODSpec
    from oodjax.experiment.data import assemble

    d = make_fake_fashion_mnist(tmp_path / "fm", n_train=100, n_test=20)
    (tmp_path / "mine").mkdir()
    for i in range(10):
        Image.fromarray(np.full((30, 30), 25 * i, np.uint8)).save(tmp_path / "mine" / f"{i}.png")
    spec = EmbeddedData(data_dir=str(d), val_size=20, far_sets=("gaussian_noise",), resize_sets=False, corruptions=(),
                        ood=(OODSpec("mine", folder=str(tmp_path / "mine")),))
    sets = {s.name: s for s in assemble(spec, jax.random.key(0), jax.random.key(1)).ood_sets}
    assert set(sets) == {"gaussian_noise", "mine"} and len(sets["mine"].val) + len(sets["mine"].test) == 10
    got = np.sort(np.concatenate([sets["mine"].val[:], sets["mine"].test[:]]).reshape(10, -1)[:, 0])
    np.testing.assert_allclose(got, np.arange(10) * 25 / 255.0, rtol=1e-6)  # grayscale, resized to 28 x 28
    bad = dataclasses.replace(spec, ood=(OODSpec("cifar10"),))
    with pytest.raises(ValueError, match="image folders or synthetic"):
        from oodjax.experiment.data import check_sources

        check_sources(Experiment("x", bad, (ModelSpec("m", {"msp": ("msp", {})}),)))
