"""Fashion-MNIST IDX loading and the offline OOD sets."""

import jax
import numpy as np
import pytest

from oodjax import data
from tests.fake_data import build_tiny_tfds, make_fake_fashion_mnist, write_idx


def test_read_idx_round_trip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", a, compress=False)
    write_idx(tmp_path / "b", a, compress=True)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "a"), a)
    np.testing.assert_array_equal(data.read_idx(tmp_path / "b.gz"), a)


def test_read_idx_rejects_garbage(tmp_path):
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04hello")
    with pytest.raises(ValueError, match="not an IDX file"):
        data.read_idx(tmp_path / "bad")
    write_idx(tmp_path / "short", np.zeros((4, 4)), compress=False)
    raw = (tmp_path / "short").read_bytes()
    (tmp_path / "short").write_bytes(raw[:-3])
    with pytest.raises(ValueError, match="header says shape"):
        data.read_idx(tmp_path / "short")


def test_load_fashion_mnist(tmp_path):
    d = make_fake_fashion_mnist(tmp_path / "fm", n_train=50, n_test=20)
    x, y = data.load_fashion_mnist("train", d)
    assert x.shape == (50, 28, 28, 1) and x.dtype == np.float32 and y.shape == (50,)
    assert 0.0 <= x.min() and x.max() <= 1.0 and y.dtype == np.int32
    assert data.load_fashion_mnist("test", d)[0].shape == (20, 28, 28, 1)
    with pytest.raises(ValueError, match="split"):
        data.load_fashion_mnist("validation", d)


def test_missing_data_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv(data.fashion_mnist.ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist.*data_dir"):
        data.load_fashion_mnist("train", tmp_path)
    monkeypatch.setenv(data.fashion_mnist.ENV_VAR, str(make_fake_fashion_mnist(tmp_path / "env", 10, 10)))
    assert data.load_fashion_mnist("train")[0].shape[0] == 10


def test_ood_sets(key):
    digits = data.digits()
    assert digits.shape == (1797, 28, 28, 1) and 0 <= digits.min() and digits.max() <= 1
    g = data.gaussian_noise(key, 100)
    np.testing.assert_array_equal(g, data.gaussian_noise(key, 100))
    assert g.shape == (100, 28, 28, 1) and g.min() == 0.0 and g.max() == 1.0  # clipped N(0.5, 1)
    assert abs(float(np.mean(g)) - 0.5) < 0.02
    u = data.uniform_noise(jax.random.key(3), 50)
    assert 0 <= u.min() and u.max() < 1 and abs(float(u.mean()) - 0.5) < 0.02
    nearest, bicubic = data.digits(method="nearest"), data.digits(method="bicubic")
    assert not np.allclose(nearest, bicubic)
    with pytest.raises(ValueError, match="method"):
        data.digits(method="area")


def test_split_is_part_of_the_definition():
    x = np.random.default_rng(0).uniform(size=(50, 28, 28, 1)).astype(np.float32)
    a = data.ood_set_from_arrays("mine", x)
    b = data.ood_set_from_arrays("mine", x)
    np.testing.assert_array_equal(a.val.images, b.val.images)
    assert len(a.val) == 10 and len(a.test) == 40
    val_idx, test_idx = data.split_indices("mine", 50, 0.2)
    assert not set(val_idx) & set(test_idx) and len(set(val_idx) | set(test_idx)) == 50
    other, _ = data.split_indices("theirs", 50, 0.2)
    assert not np.array_equal(val_idx, other)  # another set, another split
    assert data.ood_set_from_arrays("mine", x, val_fraction=0.0).val is None
    with pytest.raises(ValueError, match="val_fraction"):
        data.ood_set_from_arrays("mine", x, val_fraction=1.0)
    with pytest.raises(ValueError, match=r"pixels must be finite and in \[0, 1\]"):
        data.ood_set_from_arrays("bad", x * 255)
    with pytest.raises(ValueError, match=r"shape \(N, H, W, C\)"):
        data.ood_set_from_arrays("bad", x[..., 0])


def test_embedded_suite(tmp_path):
    x = np.random.default_rng(1).uniform(size=(300, 28, 28, 1)).astype(np.float32)
    suite = data.embedded_suite(x, far=("textures", "gaussian_noise"), corruption_size=100)
    names = [s.name for s in suite]
    assert names[:2] == ["textures", "gaussian_noise"]
    assert set(data.RESIZE_SETS) <= set(names)
    assert [s.severity for s in suite if s.name.startswith("fmnist-gaussian_blur")] == [1, 2, 3, 4, 5]
    for s in suite:
        assert s.val is not None and s.test.images.shape[1:] == (28, 28, 1)
        assert 0.0 <= s.test.images.min() and s.test.images.max() <= 1.0
    again = data.embedded_suite(x, far=("textures", "gaussian_noise"), corruption_size=100)
    for s, t in zip(suite, again):
        np.testing.assert_array_equal(s.test.images, t.test.images)
    with pytest.raises(ValueError, match="unknown far-OOD set"):
        data.far_ood_images("lsun")


def test_corruptions_grow_with_severity(key):
    x = np.random.default_rng(2).uniform(size=(20, 28, 28, 1)).astype(np.float32)
    blur = [data.corrupt(x, "gaussian_blur", s, key).std() for s in range(1, 6)]
    assert all(a > b for a, b in zip(blur, blur[1:]))  # more blur, less pixel variance
    noise = [np.abs(data.corrupt(x, "gaussian_noise", s, key) - x).mean() for s in range(1, 6)]
    assert all(a < b for a, b in zip(noise, noise[1:]))
    contrast = [data.corrupt(x, "contrast", s, key).std() for s in range(1, 6)]
    assert all(a > b for a, b in zip(contrast, contrast[1:]))
    with pytest.raises(ValueError, match="severity"):
        data.corrupt(x, "gaussian_blur", 6, key)
    with pytest.raises(ValueError, match="corruption"):
        data.corrupt(x, "fog", 1, key)


def test_heldout_classes():
    x = np.arange(10, dtype=np.float32).reshape(10, 1, 1, 1) / 10
    y = np.arange(10) % 5
    id_x, id_y, ood_x = data.heldout_classes(x, y, (3, 1))
    assert id_y.tolist() == [1, 0, 1, 0] and ood_x.shape[0] == 6
    np.testing.assert_array_equal(id_x[:, 0, 0, 0], x[[1, 3, 6, 8], 0, 0, 0])
    with pytest.raises(ValueError, match="id_classes"):
        data.heldout_classes(x, y, (1, 7))


def test_tfds_sources_with_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=12):
        src = data.TfdsSource("cifar10", data_dir="/nonexistent", image_size=28, channels=1)
        batches = list(src.batches(5))
        assert [b.shape for b in batches] == [(5, 28, 28, 1), (5, 28, 28, 1), (2, 28, 28, 1)]
        assert all(0.0 <= b.min() and b.max() <= 1.0 for b in batches)
        assert src.labels().shape == (12,)
        ood = data.ood_set_from_tfds("imagenet_c/gaussian_blur/3", data_dir="/nonexistent", image_size=64,
                                     resize="resize_crop")
        assert ood.kind == "covariate" and ood.severity == 3
        assert next(ood.test.batches(4)).shape == (4, 64, 64, 3)
        assert ood.val.split == "validation[:20%]" and ood.test.split == "validation[20%:]"
        assert next(data.TfdsSource("svhn", data_dir="/x", image_size=32).batches(3)).shape == (3, 32, 32, 3)
    assert data.tfds_builder_and_split("svhn") == ("svhn_cropped", "test")
    with pytest.raises(ValueError, match="severity"):
        data.tfds_builder_and_split("imagenet_c/fog/9")


def test_tfds_missing_dataset_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="tfds build cifar10 --data_dir"):
        data.TfdsSource("cifar10", data_dir=str(tmp_path))  # refused when built, not when read


def _stored_order(got: np.ndarray, images: np.ndarray) -> list[int]:
    """Which generated image (uint8) each read image ([0, 1]) is; asserts each is one, once."""
    flat = images.reshape(len(images), -1) / 255.0
    order = [int(np.flatnonzero(np.abs(flat - g.reshape(-1)).max(axis=1) < 1e-6)[0]) for g in got]
    assert sorted(order) == list(range(len(images)))
    return order


def test_tfds_sources_are_checked_when_built(tmp_path):
    """A real prepared tfds dataset reads; a bad name, split or data_dir fails at construction,
    naming what was looked for and where."""
    name = build_tiny_tfds(tmp_path / "tfds", n_train=24, n_test=10, size=8)
    d = str(tmp_path / "tfds")
    src = data.TfdsSource(name, data_dir=d, image_size=8)
    assert [b.shape for b in src.batches(4)] == [(4, 8, 8, 3), (4, 8, 8, 3), (2, 8, 8, 3)]
    images, labels = data.synthetic_images(10, 8, seed=1_000_003)  # the test split's examples
    order = _stored_order(np.concatenate(list(src.batches(4))), images)  # tfds shuffles them when it prepares
    np.testing.assert_array_equal(src.labels(), labels[order])
    assert data.check_prepared(name, "train[:50%]+test", d) == (name, "train[:50%]+test")
    with pytest.raises(ValueError, match=r"has no split 'validation'; it has \['test', 'train'\]"):
        data.TfdsSource(name, split="validation", data_dir=d)
    with pytest.raises(ValueError, match="has no split 'validation'"):
        data.ood_set_from_tfds(name, data_dir=d, image_size=8, split="validation")
    with pytest.raises(FileNotFoundError, match=r"'cifar10' is not prepared: looked in .*cifar10"):
        data.ood_set_from_tfds("cifar10", data_dir=d, image_size=8)
    with pytest.raises(FileNotFoundError, match="data_dir '/nonexistent' does not exist"):
        data.ood_set_from_tfds("svhn", data_dir="/nonexistent", image_size=8)
    with pytest.raises(ValueError, match=r"unknown dataset 'cifar_10'.*close tfds names: \['cifar10'"):
        data.check_prepared("cifar_10", data_dir=d)
    with pytest.raises(ValueError, match="imagenet2012_corrupted/fogg_3"):
        data.check_prepared("imagenet_c/fogg/3", data_dir=d)


def test_image_folder(tmp_path):
    from PIL import Image

    (tmp_path / "sub").mkdir()
    rng = np.random.default_rng(3)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)).save(tmp_path / "sub" / f"{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    images = data.load_image_folder(tmp_path, 32, channels=3)
    assert images.shape == (3, 32, 32, 3) and images.dtype == np.float32
    assert data.load_image_folder(tmp_path, 16, channels=1).shape == (3, 16, 16, 1)
    with pytest.raises(FileNotFoundError, match="no image files"):
        data.load_image_folder(tmp_path / "sub" / "..", 8, limit=0)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        data.load_image_folder(tmp_path / "missing", 8)
    rgb = data.to_channels(images, 1)
    np.testing.assert_allclose(rgb[..., 0], images @ np.array([0.299, 0.587, 0.114], np.float32), rtol=1e-6)


def test_tfds_images_read_by_index_and_stream_in_batches(tmp_path):
    """TfdsImages (ArrayRecord) reads any rows, equal to the stored examples; Rows streams a subset;
    a TFRecord-only dataset is refused with the rebuild command."""
    name = build_tiny_tfds(tmp_path / "ar", n_train=30, n_test=12, size=8)
    train = data.TfdsImages(name, "train", str(tmp_path / "ar"), image_size=8)
    images, labels = data.synthetic_images(30, 8, seed=0)
    assert train.shape == (30, 8, 8, 3) and len(train) == 30
    everything = train[np.arange(30)]
    stored = np.asarray(_stored_order(everything, images))  # every example read back exactly
    np.testing.assert_array_equal(train.labels(), labels[stored])
    idx = np.asarray([29, 0, 7, 7])
    np.testing.assert_array_equal(train[idx], everything[idx])
    view = data.Rows(train, np.asarray([3, 1, 4, 1, 5]))
    np.testing.assert_array_equal(np.concatenate(list(view.batches(2))), everything[[3, 1, 4, 1, 5]])
    np.testing.assert_array_equal(view.labels(), labels[stored[[3, 1, 4, 1, 5]]])
    np.testing.assert_array_equal(view[np.asarray([4])], everything[[5]])
    # TfdsSource streams an ArrayRecord split through the same reader.
    stream = data.TfdsSource(name, split="train", data_dir=str(tmp_path / "ar"), image_size=8)
    np.testing.assert_array_equal(np.concatenate(list(stream.batches(7))), everything)
    # Resizing and channels happen per read: 8 -> 16 px, grayscale.
    gray = data.TfdsImages(name, "test", str(tmp_path / "ar"), image_size=16, channels=1)
    assert gray[np.arange(3)].shape == (3, 16, 16, 1)
    assert train.identity() == data.TfdsImages(name, "train", str(tmp_path / "ar"), image_size=8).identity()
    assert train.identity() != gray.identity()
    with pytest.raises(IndexError, match=r"in \[0, 30\)"):
        train[np.asarray([30])]
    with pytest.raises(TypeError, match="integer index array"):
        train[np.asarray([0.5])]
    build_tiny_tfds(tmp_path / "tfr", n_train=6, n_test=4, size=8, file_format="tfrecord")
    with pytest.raises(ValueError, match="cannot be read by index: rebuild it with `tfds build .* --file_format=array_record"):
        data.TfdsImages(name, "train", str(tmp_path / "tfr"), image_size=8)


def test_prefetch_keeps_order_reads_at_most_depth_ahead_and_raises_in_place():
    import threading

    from oodjax.data import prefetch

    produced, threads = [], set()

    def items():
        for i in range(6):
            produced.append(i)
            threads.add(threading.current_thread().name)
            yield i

    got = []
    for x in prefetch(items(), depth=2):
        got.append(x)
        assert len(produced) <= len(got) + 2  # never more than depth ahead of the consumer
    assert got == list(range(6)) and threads and all(t.startswith("oodjax-prefetch") for t in threads)

    def failing():
        yield 0
        raise OSError("record 1 is corrupt")

    stream = prefetch(failing(), depth=3)
    assert next(stream) == 0  # the item before the failure arrives first
    with pytest.raises(OSError, match="record 1 is corrupt"):
        next(stream)
    with pytest.raises(ValueError, match="depth must be >= 1"):
        list(prefetch([1], depth=0))

    produced.clear()
    stream = prefetch(items(), depth=3)
    next(stream)
    stream.close()  # a consumer that stops early: reads not yet started are dropped
    assert len(produced) <= 1 + 3


def test_prefetch_map_keeps_order_uses_threads_bounds_depth_and_raises_in_place():
    import threading
    import time

    from oodjax.data import prefetch_map

    started, threads = [], set()

    def slow_square(i):
        started.append(i)
        threads.add(threading.current_thread().name)
        time.sleep(0.02 * (i % 3))  # later items finish first: the order must still hold
        return i * i

    got = []
    for x in prefetch_map(slow_square, range(12), workers=3, depth=4):
        got.append(x)
        assert len(started) <= len(got) + 4  # never more than depth calls ahead of the consumer
    assert got == [i * i for i in range(12)]
    assert len(threads) > 1 and all(t.startswith("oodjax-read") for t in threads)

    def fails_at_2(i):
        if i == 2:
            raise OSError("image 2 is truncated")
        return i

    stream = prefetch_map(fails_at_2, range(5), workers=2)
    assert [next(stream), next(stream)] == [0, 1]
    with pytest.raises(OSError, match="image 2 is truncated"):
        next(stream)
    with pytest.raises(ValueError, match="workers and depth must be >= 1"):
        next(prefetch_map(abs, [1], workers=0))


# --- loaders name the file and the problem (issue 17) ---------------------------------------------

def test_sixteen_bit_and_float_images_keep_their_values(tmp_path):
    from PIL import Image

    Image.fromarray(np.full((6, 6), 32768, np.uint16)).save(tmp_path / "a16.png")  # 16-bit grayscale PNG
    Image.fromarray(np.full((6, 6), 0.25, np.float32)).save(tmp_path / "b.tif")  # float TIFF in [0, 1]
    Image.fromarray(np.full((6, 6, 3), 51, np.uint8)).save(tmp_path / "c.png")
    x = data.load_image_folder(tmp_path, 4, channels=1)
    np.testing.assert_allclose(x[:, 0, 0, 0], [32768 / 65535, 0.25, 0.2], rtol=1e-5)
    rgb = data.load_image_folder(tmp_path, 4, channels=3)
    np.testing.assert_allclose(rgb[:, 1, 1], np.repeat(x[:, 1, 1], 3, axis=-1), atol=2e-3)
    Image.fromarray(np.full((6, 6), 2.0, np.float32)).save(tmp_path / "d.tif")
    with pytest.raises(ValueError, match=r"d.tif: cannot read this image \(a F image with values in \[2, 2\]"):
        data.load_image_folder(tmp_path, 4, channels=1)


def test_image_folder_errors_name_the_file(tmp_path):
    from PIL import Image

    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "ok.jpg")
    (tmp_path / "looks_like.png").mkdir()  # a folder named like an image is not an image
    assert [p.name for p in data.sources.image_files(tmp_path)] == ["ok.jpg"]
    for channels in (2, 4):
        with pytest.raises(ValueError, match=f"grayscale \\(channels=1\\) or RGB \\(channels=3\\), got channels={channels}"):
            data.FolderImages(tmp_path, 8, channels=channels)
        with pytest.raises(ValueError, match="got channels="):
            data.load_image_folder(tmp_path, 8, channels=channels)
    raw = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "short.jpg").write_bytes(raw[: len(raw) // 2])  # a truncated JPEG
    with pytest.raises(ValueError, match=r"short.jpg: cannot read this image .*remove or replace it"):
        data.FolderImages(tmp_path, 8)[0:2]


def test_damaged_idx_files_are_named(tmp_path):
    from oodjax.data import fashion_mnist as fm

    d = make_fake_fashion_mnist(tmp_path / "fm", n_train=20, n_test=10)
    gz = d / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[:200])  # truncated
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz: cannot read this file .*damaged or truncated"):
        fm.load_fashion_mnist("train", d)
    (d / "t10k-images-idx3-ubyte.gz").write_bytes(b"not a gzip file at all")
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte.gz: cannot read this file"):
        fm.load_fashion_mnist("test", d)
    d2 = make_fake_fashion_mnist(tmp_path / "fm2", n_train=20, n_test=10)
    labels = fm.read_idx(d2 / "train-labels-idx1-ubyte.gz").copy()
    labels[3] = 12
    fm.write_idx(d2 / "train-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.gz: 1 labels outside Fashion-MNIST's 0..9 "
                                         r"\(first at index 3: 12\)"):
        fm.load_fashion_mnist("train", d2)
