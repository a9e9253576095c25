"""The ImageNet configs of papers 002-004 (experiments/configs/imagenet_*.py) end to end on tfds mock
data, with tiny imported networks in place of the published checkpoints and small image folders in
place of the OOD folders; their grids shrunk to two values each."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.numpy import save_file

from experiments import run as run_cli
from experiments.presets.common import LEADERBOARD
from experiments.presets.imagenet import CHECKPOINT_DIR, CHECKPOINTS
from oodjax.experiment import run, validate
from oodjax.models.imports import read_state

FIX = Path(__file__).parent / "fixtures" / "checkpoints"
PER_CLASS = ("mahalanobis", "rmds", "openmax", "she")  # fit per class: 24 mock images cannot cover 1000 classes


def _fixture(arch: str, tmp_path: Path) -> Path:
    """A tiny network of `arch`'s layout with ImageNet's 1000 classes (the fixture's 10-class head
    widened with random rows), so that ImageNet's labels fit it."""
    if arch.startswith("bit"):
        src, head = FIX / "bit_r50x1.npz", ("resnet/head/conv2d/kernel", "resnet/head/conv2d/bias")
    elif arch.startswith("densenet"):
        src, head = FIX / "torchvision_densenet121.pth", ("classifier.weight", "classifier.bias")
    elif arch.startswith("wide"):
        src, head = FIX / "torchvision_wide_resnet50_2.pth", ("fc.weight", "fc.bias")
    else:  # ResNet-18's layout for every ResNet: the same code path, and the fastest to compile
        src, head = FIX / "torchvision_resnet18.pth", ("fc.weight", "fc.bias")
    state = dict(read_state(src))
    rng = np.random.default_rng(0)
    for key in head:
        w = state[key]
        axis = -1 if arch.startswith("bit") else 0
        extra = list(w.shape)
        extra[axis] = 1000 - w.shape[axis]
        # scaled down: the deep fixtures' random features reach 1e4, and exp(logits) must stay finite (eq. 5)
        state[key] = 0.005 * np.concatenate([w, rng.standard_normal(extra).astype(np.float32)], axis=axis)
    out = tmp_path / f"{arch}{src.suffix if arch.startswith('bit') else '.safetensors'}"
    if arch.startswith("bit"):
        np.savez(out, **state)
    else:
        save_file(state, str(out))
    return out


def _shrink(exp, tmp_path: Path, models: int | None = None):
    def small(hyper):
        return {k: (v[0], v[-1]) if k in ("temperatures", "epsilons") and v is not None else v for k, v in hyper.items()}

    specs = tuple(dataclasses.replace(m, checkpoint=str(_fixture(m.checkpoint_arch, tmp_path)), checkpoint_arch=None,
                                      scorers={k: (n, {**small(h), **({"k": 5} if n == "nnguide" else {})})
                                               for k, (n, h) in m.scorers.items() if n not in PER_CLASS})
                  for m in exp.models[:models])
    ood = []
    for o in exp.data.ood:
        if o.folder is not None:
            d = tmp_path / o.name
            d.mkdir()
            rng = np.random.default_rng(len(ood))
            for i in range(15):
                Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8)).save(d / f"{i}.jpg")
            o = dataclasses.replace(o, folder=str(d))
        ood.append(o)
    data = dataclasses.replace(exp.data, ood=tuple(ood), image_size=32, val_size=16, test_size=24, ood_test_size=12,
                               ood_val_percent=40, data_dir="/nonexistent")
    return dataclasses.replace(exp, models=specs, data=data, fit_size=24, batch_size=16, progress=False,
                               results_dir=str(tmp_path / "results"), bootstrap=min(exp.bootstrap, 4))


@pytest.mark.parametrize("config, variant, models", [
    ("imagenet_rg", "default", None), ("imagenet_o", "default", 1),
    ("imagenet_grodin", "default", None), ("imagenet_leaderboard", "default", None)])
def test_imagenet_config_runs_end_to_end_on_mock_data(config, variant, models, tmp_path):
    import tensorflow_datasets as tfds

    exp = run_cli.load_config(f"experiments/configs/{config}.py", variant)
    for m in exp.models:  # each names the published checkpoint it expects
        assert m.checkpoint == f"{CHECKPOINT_DIR}/{CHECKPOINTS[m.checkpoint_arch][0]}"
    small = _shrink(exp, tmp_path, models)
    if config == "imagenet_leaderboard":  # the baselines run in the other configs: the new methods only here
        validate(small, check_data=False)  # every scorer of the config built and its needs met
        m = small.models[0]
        small = dataclasses.replace(small, models=(dataclasses.replace(m, scorers={
            k: v for k, v in m.scorers.items() if k in LEADERBOARD}),), data=dataclasses.replace(
            small.data, ood=small.data.ood[::2]))  # one near and two far sets
    with tfds.testing.mock_data(num_examples=40):
        result = run(small)
    records = result["records"]
    want = {(m.name, label, o.name) for m in small.models for label in m.scorers for o in small.data.ood}
    assert {(r["model"], r["scorer"], r["ood_set"]) for r in records} == want
    assert all(0.0 <= r["auroc"] <= 1.0 for r in records)
    if exp.bootstrap:
        assert exp.bootstrap == 100 and all("auroc_std" in r for r in records)
    assert (Path(small.results_dir) / small.name / "table.md").exists()


def test_a_missing_checkpoint_is_named_before_any_work():
    exp = run_cli.load_config("experiments/configs/imagenet_grodin.py", "default")
    with pytest.raises(FileNotFoundError, match="resnet18-f37072fd.pth does not exist"):
        validate(exp, check_data=False)
    for variant in ("densenet121",):
        assert run_cli.load_config("experiments/configs/imagenet_rg.py", variant).models[0].checkpoint_arch == variant
    with pytest.raises(ValueError, match="unknown variant"):
        run_cli.load_config("experiments/configs/imagenet_o.py", "vgg16")


def test_a_checkpoint_of_other_classes_is_refused(tmp_path):
    import tensorflow_datasets as tfds

    exp = _shrink(run_cli.load_config("experiments/configs/imagenet_rg.py", "resnet50"), tmp_path)
    ten = dataclasses.replace(exp.models[0], checkpoint=str(FIX / "torchvision_resnet50.safetensors"))
    with tfds.testing.mock_data(num_examples=40), pytest.raises(ValueError, match="has 10 classes, but imagenet"):
        run(dataclasses.replace(exp, models=(ten,)))
