"""Imported checkpoints against the original frameworks' forward passes (fixtures made by
scripts/make_checkpoint_fixtures.py with torch/torchvision/timm, random weights and batch-norm
statistics, eval mode), and the importer's errors."""

import pickle
import re
import struct
import zipfile
from pathlib import Path

import jax
import numpy as np
import pytest
from safetensors.numpy import save_file

from oodjax import models
from oodjax.models.imports import CheckpointError, import_checkpoint, normalized, read_state

FIX = Path(__file__).parent / "fixtures" / "checkpoints"
CASES = {  # fixture -> (file, the architecture detected)
    "torchvision_resnet18": ("torchvision_resnet18.pth", "resnet18"),
    "torchvision_resnet50": ("torchvision_resnet50.safetensors", "resnet50"),
    "torchvision_wide_resnet50_2": ("torchvision_wide_resnet50_2.pth", "wide_resnet50_2"),
    "torchvision_densenet121": ("torchvision_densenet121.pth", "densenet121"),
    "cifar_wrn16_1": ("cifar_wrn16_1.pth", "wrn16_1"),  # the legacy (pre-1.6) torch format
    "cifar_resnet18": ("cifar_resnet18.pth", "cifar_resnet18"),
    "bit_r50x1": ("bit_r50x1.npz", "bit resnetv2 with units (2, 1, 1, 1)"),  # BiT layout, fewer units
    "big_vision_vit": ("big_vision_vit.npz", "vit with patch 8, width 32, depth 2"),
    "big_vision_vit_scanned": ("big_vision_vit_scanned.npz", "vit with patch 8, width 32, depth 2"),
    "vit_jax_vit": ("vit_jax_vit.npz", "vit with patch 8, width 32, depth 2"),  # the augreg files' layout
}


def _rel(got, want) -> float:
    return float(np.max(np.abs(np.asarray(got) - want)) / np.max(np.abs(want)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_imported_network_equals_the_original_framework(case):
    file, arch = CASES[case]
    ref = np.load(FIX / f"{case}.ref.npz")
    model, variables = import_checkpoint(FIX / file, image_size=ref["x"].shape[1])
    logits, features = jax.jit(model.apply)(variables, ref["x"])
    assert _rel(logits, ref["logits"]) <= 1e-4 and _rel(features, ref["features"]) <= 1e-4
    head = model.head(variables)  # features @ head = logits: the head is the file's last linear layer
    np.testing.assert_allclose(np.asarray(features) @ np.asarray(head.kernel) + np.asarray(head.bias), logits,
                               rtol=1e-4, atol=1e-5)
    assert "weights" in model.provides and "maps" in model.provides
    with pytest.raises(CheckpointError, match=re.escape(f"holds a {arch}")):
        import_checkpoint(FIX / file, arch="resnet152")


def test_a_named_architecture_that_matches_is_accepted():
    model, _ = import_checkpoint(FIX / "torchvision_resnet18.pth", arch="resnet18")
    assert model.input_shape == (224, 224, 3)  # an ImageNet layout's default size


def test_reader_unwraps_training_dicts_and_reads_bf16_half_strided_and_int_tensors():
    got = read_state(FIX / "reader_cases.pth")
    want = np.load(FIX / "reader_cases.expected.npz")
    assert sorted(got) == sorted(want.files)  # "module." stripped, the state dict found under "state_dict"
    for k in want.files:
        np.testing.assert_array_equal(got[k].astype(np.float64), want[k].astype(np.float64), err_msg=k)
    assert got["fc.weight"].shape == (4, 3) and got["half"].dtype == np.float16 and got["count"].dtype == np.int64


def _state(case: str = "torchvision_resnet18.pth") -> dict:
    return read_state(FIX / case)


def test_unknown_missing_and_misshaped_parameters_are_named(tmp_path):
    state = _state()
    extra = {**state, "layer5.0.conv1.weight": np.zeros((2, 2, 3, 3), np.float32)}
    save_file(extra, str(tmp_path / "extra.safetensors"))
    with pytest.raises(CheckpointError, match="has no place for: layer5.0.conv1.weight"):
        import_checkpoint(tmp_path / "extra.safetensors")
    missing = {k: v for k, v in state.items() if not k.startswith("layer2.1.bn2.")}
    save_file(missing, str(tmp_path / "missing.safetensors"))
    with pytest.raises(CheckpointError, match="lacks 4 parameters.*layer2.1.bn2.weight"):
        import_checkpoint(tmp_path / "missing.safetensors")
    bad = {**state, "layer3.1.conv1.weight": np.zeros((16, 16, 1, 1), np.float32)}  # a 1x1 kernel for a 3x3
    save_file(bad, str(tmp_path / "bad.safetensors"))
    with pytest.raises(CheckpointError, match=r"shape mismatches: layer3.1.conv1.weight \(1, 1, 16, 16\) "
                                              r"\(want \(3, 3, 16, 16\)\)"):
        import_checkpoint(tmp_path / "bad.safetensors")
    save_file({"encoder.w": np.zeros(3, np.float32)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="no known layout has these parameter names \\(encoder.w\\)"):
        import_checkpoint(tmp_path / "other.safetensors")


def test_damaged_and_hostile_files_are_refused_before_anything_runs(tmp_path):
    raw = (FIX / "torchvision_resnet18.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="cut.pth"):
        import_checkpoint(tmp_path / "cut.pth")
    with pytest.raises(CheckpointError, match="unknown checkpoint format '.h5'"):
        (tmp_path / "w.h5").write_bytes(b"x")
        import_checkpoint(tmp_path / "w.h5")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        import_checkpoint(tmp_path / "none.pth")

    class Boom:  # a pickle that would call os.system if it were unpickled with pickle.load
        def __reduce__(self):
            import os

            return os.system, ("echo pwned > " + str(tmp_path / "pwned"),)

    with zipfile.ZipFile(tmp_path / "evil.pth", "w") as z:
        z.writestr("archive/data.pkl", pickle.dumps({"fc.weight": Boom()}))
    with pytest.raises(CheckpointError, match="holds a (posix|os).system object.*no code runs"):
        import_checkpoint(tmp_path / "evil.pth")
    assert not (tmp_path / "pwned").exists()


def test_normalized_applies_mean_and_std_before_the_network(key):
    model = models.get("small_cnn", num_classes=3, in_channels=3, image_size=8, widths=(4,), feature_dim=4)
    variables = model.init(key)
    x = jax.random.uniform(key, (2, 8, 8, 3))
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    got = normalized(model, mean, std).apply(variables, x)
    m, s = (np.asarray(v, np.float32).reshape(1, 1, 1, 3) for v in (mean, std))
    want = model.apply(variables, (x - m) / s)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    with pytest.raises(ValueError, match="std > 0"):
        normalized(model, (0.0,) * 3, (1.0, 0.0, 1.0))


def test_our_own_orbax_checkpoint_round_trips(key, tmp_path):
    from oodjax.training import TrainConfig, train

    model = models.get("small_cnn", num_classes=3, in_channels=1, image_size=12, widths=(8,), feature_dim=8)
    x = np.asarray(jax.random.uniform(key, (16, 12, 12, 1)))
    y = np.arange(16, dtype=np.int32) % 3
    trained, _ = train(model, x, y, TrainConfig(epochs=1, batch_size=8, augment=False, checkpoint_every=1),
                       key=key, workdir=tmp_path / "run", progress=False)
    got, variables = import_checkpoint(tmp_path / "run", arch="small_cnn", num_classes=3, in_channels=1,
                                       image_size=12, widths=(8,), feature_dim=8)
    np.testing.assert_array_equal(got.apply(variables, x)[0], model.apply(trained, x)[0])
    with pytest.raises(CheckpointError, match="name its zoo model, arch="):
        import_checkpoint(tmp_path / "run")
    with pytest.raises(CheckpointError, match="shape mismatches"):
        import_checkpoint(tmp_path / "run", arch="small_cnn", num_classes=5, in_channels=1, image_size=12,
                          widths=(8,), feature_dim=8)


def test_cli_scores_a_checkpoint_without_training_and_takes_an_ood_folder(tmp_path, capsys):
    import json

    from PIL import Image

    from experiments import run as run_cli
    from oodjax.data.tfds_build import NAME
    from tests.fake_data import build_tiny_tfds

    build_tiny_tfds(tmp_path / "tfds", n_train=60, n_test=30, size=32)
    folder = tmp_path / "mine"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(10):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    argv = ["tests/configs/checkpoint_eval.py", "--data-dir", str(tmp_path / "tfds"), "--results-dir",
            str(tmp_path / "out"), "--checkpoint", str(FIX / "cifar_resnet18.pth"), "--arch", "cifar_resnet18",
            "--ood-folder", f"mine={folder}"]
    assert run_cli.main(argv) == 0
    out = tmp_path / "out" / "checkpoint_eval"
    records = json.loads((out / "metrics.json").read_text())
    assert {(r["model"], r["ood_set"]) for r in records} == {("cifar_resnet18", "gaussian_noise"), ("cifar_resnet18", "mine")}
    assert {r["scorer"] for r in records} == {"msp", "energy", "knn", "gradnorm", "odin"}
    assert all(0.0 <= r["auroc"] <= 1.0 for r in records)
    assert not any(out.glob("train_*"))  # nothing trained

    # the run's ID accuracy is the imported network's on the same images, its own normalization applied
    import tensorflow_datasets as tfds

    ds = tfds.data_source(NAME, split="test", data_dir=str(tmp_path / "tfds"))
    x = np.stack([ds[i]["image"] for i in range(len(ds))]).astype(np.float32) / 255.0
    y = np.asarray([ds[i]["label"] for i in range(len(ds))])
    model, variables = import_checkpoint(FIX / "cifar_resnet18.pth", image_size=32)
    accuracy = float(np.mean(np.argmax(model.apply(variables, x)[0], -1) == y))
    assert f"ID test accuracy (cifar_resnet18: {accuracy:.4f})" in capsys.readouterr().out

    assert run_cli.main([*argv[:5], "--checkpoint", str(FIX / "cifar_resnet18.pth"), "--arch", "resnet50"]) == 2
    assert "holds a cifar_resnet18" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        run_cli.main([*argv[:5], "--arch", "resnet50"])  # --arch without --checkpoint


def test_imagenet_pass_bench_times_an_imported_network(capsys):
    from experiments.benchmarks import imagenet_pass_bench

    assert imagenet_pass_bench.main(["--checkpoint", str(FIX / "torchvision_resnet18.pth"), "--image-size", "32",
                                     "--images", "96", "--small", "32", "--batch", "16", "--pool", "40",
                                     "--workers", "2", "--scorers", "msp,gradnorm"]) == 0
    rows = [line.split("|")[2].strip() for line in capsys.readouterr().out.splitlines()
            if line.startswith(("| msp", "| gradnorm"))]
    assert len(rows) == 2 and all(r == "too few images to tell" or float(r) > 0 for r in rows)  # timings vary


def _tensor_pickle(size: tuple[int, ...], stride: tuple[int, ...], numel: int) -> bytes:
    """A torch zip checkpoint's data.pkl written opcode by opcode (no torch here): {"w": a float32
    tensor of `size` and `stride` over storage "0" of `numel` elements}."""
    def s(text: str) -> bytes:
        return b"X" + struct.pack("<I", len(text)) + text.encode()

    def ints(values) -> bytes:
        return b"(" + b"".join(b"J" + struct.pack("<i", v) for v in values) + b"t"

    pid = b"(" + s("storage") + b"ctorch\nFloatStorage\n" + s("0") + s("cpu") + b"J" + struct.pack("<i", numel) + b"tQ"
    args = b"(" + pid + b"K\x00" + ints(size) + ints(stride) + b"\x89" + b"ccollections\nOrderedDict\n)R" + b"t"
    return b"\x80\x02}" + s("w") + b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"Rs."


def _zip_checkpoint(path: Path, pkl: bytes, data: bytes) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/data/0", data)
    return path


def test_reader_checks_tensor_bounds_storage_sizes_and_the_legacy_header(tmp_path):
    values = np.arange(6, dtype=np.float32)
    ok = _zip_checkpoint(tmp_path / "ok.pth", _tensor_pickle((2, 3), (1, 2), 6), values.tobytes())
    np.testing.assert_array_equal(read_state(ok)["w"], values.reshape(3, 2).T)  # a transposed view
    far = _zip_checkpoint(tmp_path / "far.pth", _tensor_pickle((1 << 24,), (1,), 6), values.tobytes())
    with pytest.raises(CheckpointError, match="reads element 16777215 of a storage of 6"):
        read_state(far)
    short = _zip_checkpoint(tmp_path / "short.pth", _tensor_pickle((2, 3), (3, 1), 6), values[:4].tobytes())
    with pytest.raises(CheckpointError, match="holds 16 bytes, not 6 x 4"):
        read_state(short)

    class Boom:
        def __reduce__(self):
            import os

            return os.system, ("echo pwned > " + str(tmp_path / "pwned"),)

    (tmp_path / "legacy.pth").write_bytes(pickle.dumps(Boom()))  # not a zip: the legacy reader's header
    with pytest.raises(CheckpointError, match="header holds a (posix|os).system object"):
        read_state(tmp_path / "legacy.pth")
    assert not (tmp_path / "pwned").exists()


def test_architecture_errors_name_the_problem(tmp_path):
    state = _state("torchvision_resnet50.safetensors")
    grouped = {**state, "layer1.0.conv2.weight": state["layer1.0.conv2.weight"][:, :2]}  # groups = 2: ResNeXt
    save_file(grouped, str(tmp_path / "resnext.safetensors"))
    with pytest.raises(CheckpointError, match="ResNeXt"):
        import_checkpoint(tmp_path / "resnext.safetensors")
    cifar = {k: v for k, v in _state("cifar_resnet18.pth").items() if k != "fc.weight"}
    save_file(cifar, str(tmp_path / "nofc.safetensors"))
    with pytest.raises(CheckpointError, match="lacks 'fc.weight'"):
        import_checkpoint(tmp_path / "nofc.safetensors")
    with pytest.raises(ValueError, match="mean and std together"):
        import_checkpoint(FIX / "cifar_resnet18.pth", mean=(0.5, 0.5, 0.5))


def test_folder_images_read_rows_lazily_as_load_image_folder_does(tmp_path):
    from PIL import Image

    from oodjax import data

    rng = np.random.default_rng(0)
    (tmp_path / "sub").mkdir()
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)).save(tmp_path / "sub" / f"{i}.png")
    folder = data.FolderImages(tmp_path, 16, 3, "bicubic")
    whole = data.load_image_folder(tmp_path, 16, 3, resample="bicubic")
    assert folder.shape == whole.shape == (5, 16, 16, 3)
    np.testing.assert_array_equal(folder[np.asarray([4, 1])], whole[[4, 1]])
    (tmp_path / "sub" / "9.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    with pytest.raises(ValueError, match="9.jpg: cannot read this image"):
        data.FolderImages(tmp_path, 16)[np.arange(6)]
