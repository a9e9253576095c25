"""Where `make demo` finds Fashion-MNIST: the tfds fallback (exporter and the data script's choices)."""

import gzip
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from oodjax.data import fashion_mnist as fm
from tests.fake_data import write_idx as reference_write_idx

ROOT = Path(__file__).resolve().parents[1]


def test_write_idx_matches_the_reference_writer(tmp_path):
    a = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    fm.write_idx(tmp_path / "ours.gz", a)
    reference_write_idx(tmp_path / "ref", a)
    assert gzip.decompress((tmp_path / "ours.gz").read_bytes()) == gzip.decompress((tmp_path / "ref.gz").read_bytes())
    np.testing.assert_array_equal(fm.read_idx(tmp_path / "ours.gz"), a)
    with pytest.raises(ValueError, match="uint8"):
        fm.write_idx(tmp_path / "bad.gz", a.astype(np.float32))


def test_tfds_export_is_what_load_reads(tmp_path, monkeypatch):
    tfds = pytest.importorskip("tensorflow_datasets")
    from oodjax.data.fashion_mnist_tfds import export_idx

    with tfds.testing.mock_data(num_examples=6):
        out = export_idx(tmp_path / "fm")
        ref = {s: list(tfds.as_numpy(tfds.load("fashion_mnist", split=s))) for s in ("train", "test")}
    assert sorted(p.name for p in out.iterdir()) == sorted(s + ".gz" for pair in fm.FILES.values() for s in pair)
    for split in ("train", "test"):
        x, y = fm.load_fashion_mnist(split, out)
        np.testing.assert_array_equal(x, np.stack([r["image"] for r in ref[split]]).astype(np.float32) / 255.0)
        np.testing.assert_array_equal(y, [r["label"] for r in ref[split]])
    # Without a data_dir or $OODJAX_FASHION_MNIST, the cache is where the loader looks after Debian's folder.
    monkeypatch.delenv(fm.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(fm, "DEBIAN_DIR", tmp_path / "no-debian")
    with pytest.raises(FileNotFoundError, match="fashion_mnist_tfds"):
        fm.find_data_dir()
    export_idx_dir = fm.cache_dir()
    export_idx_dir.parent.mkdir(parents=True)
    out.rename(export_idx_dir)
    assert fm.find_data_dir() == export_idx_dir


def _script(tmp_path, env):
    """Runs scripts/get_data.sh with a stand-in python that logs its call and 'exports' empty files."""
    stub = tmp_path / "py"
    names = " ".join(stem + ".gz" for pair in fm.FILES.values() for stem in pair)
    stub.write_text(f"""#!/bin/sh
echo "called: $*" >> {tmp_path}/calls
mkdir -p {tmp_path}/xdg/oodjax/fashion-mnist
for f in {names}; do touch {tmp_path}/xdg/oodjax/fashion-mnist/$f; done
""")
    stub.chmod(0o755)
    # The same script, with the Debian folder moved to one that does not exist here.
    script = tmp_path / "get_data.sh"
    text = (ROOT / "scripts" / "get_data.sh").read_text()
    assert "debian=/usr/share/datasets/fashion-mnist" in text
    script.write_text(text.replace("debian=/usr/share/datasets/fashion-mnist", f"debian={tmp_path}/no-debian"))
    full = {k: v for k, v in os.environ.items() if k != fm.ENV_VAR}
    full.update(OODJAX_PYTHON=str(stub), OODJAX_NO_APT="1", XDG_CACHE_HOME=str(tmp_path / "xdg"), **env)
    return subprocess.run(["bash", str(script)], env=full, capture_output=True, text=True, cwd=ROOT)


def test_data_script_falls_back_to_tfds_and_says_so(tmp_path):
    first = _script(tmp_path, {})
    assert first.returncode == 0, first.stderr
    cache = tmp_path / "xdg" / "oodjax" / "fashion-mnist"
    assert "(OODJAX_NO_APT=1); downloading tfds 'fashion_mnist' instead" in first.stdout
    assert f"called: -m oodjax.data.fashion_mnist_tfds --out {cache}" in (tmp_path / "calls").read_text()
    second = _script(tmp_path, {})  # the export is found, not fetched again
    assert second.stdout.strip() == f"Fashion-MNIST: tfds 'fashion_mnist', exported earlier to {cache}"
    assert (tmp_path / "calls").read_text().count("called") == 1
    (cache / "t10k-images-idx3-ubyte.gz").unlink()  # an incomplete folder is not taken for the data
    third = _script(tmp_path, {})
    assert "downloading" in third.stdout and (tmp_path / "calls").read_text().count("called") == 2


def test_data_script_names_its_source(tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in (s + ".gz" for pair in fm.FILES.values() for s in pair):
        (folder / name).touch()
    ok = _script(tmp_path, {fm.ENV_VAR: str(folder)})
    assert ok.stdout.strip() == f"Fashion-MNIST: IDX files from $OODJAX_FASHION_MNIST={folder}"
    bad = _script(tmp_path, {fm.ENV_VAR: str(tmp_path / "empty")})
    assert bad.returncode == 1 and "holds no Fashion-MNIST IDX files" in bad.stderr
    assert not (tmp_path / "calls").exists()  # nothing was fetched
