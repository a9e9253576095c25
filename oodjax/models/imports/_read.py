"""Reading checkpoint files into {name: numpy array}, without torch.

- `.safetensors`: the `safetensors` library (its numpy API).
- `.pth` / `.pt` / `.bin`: PyTorch's pickle formats, the zip one (torch >= 1.6) and the legacy one,
  read by a restricted unpickler: only tensors, storages, ordered dicts and plain Python values are
  built, so a file can run no code (torch.load's weights_only rule). No well-kept library other than
  torch reads these files; safetensors is the format to convert to where one is wanted.
- `.npz`: numpy (BiT and big_vision checkpoints: '/'-separated names).
A state dict nested under "state_dict" / "model" / "net" / "params" and a DataParallel "module."
prefix are unwrapped.
"""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

_STORAGES = {  # torch storage class -> numpy dtype (bfloat16 is read as its bits, then widened)
    "FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": np.int64, "IntStorage": np.int32, "ShortStorage": np.int16,
    "CharStorage": np.int8, "ByteStorage": np.uint8, "BoolStorage": np.bool_,
}
_DTYPES = {"float32": np.float32, "float64": np.float64, "float16": np.float16, "bfloat16": "bfloat16",
           "int64": np.int64, "int32": np.int32, "int16": np.int16, "int8": np.int8, "uint8": np.uint8, "bool": np.bool_}


class CheckpointError(ValueError):
    """A checkpoint file that cannot be read, or whose contents do not fit the architecture."""


def _numpy_dtype(dtype: Any) -> np.dtype:
    return np.dtype(np.uint16) if dtype == "bfloat16" else np.dtype(dtype)


def _widen(a: np.ndarray, dtype: Any) -> np.ndarray:
    """bfloat16 stored as uint16 bits -> float32 (exact); other dtypes as they are."""
    if dtype == "bfloat16":
        return (a.astype(np.uint32) << 16).view(np.float32)
    return a


class _Storage:
    def __init__(self, data: np.ndarray, dtype: Any):
        self.data, self.dtype = data, dtype


class _StorageType:
    def __init__(self, dtype: Any):
        self.dtype = dtype


class _Tensor:
    """A tensor's place in its storage; made an array once every storage is read (`_materialize`)."""

    def __init__(self, storage: _Storage, offset: int, size, stride, *unused):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def array(self) -> np.ndarray:
        data = self.storage.data
        offset, size, stride = self.offset, self.size, self.stride
        ints = all(isinstance(v, int) and not isinstance(v, bool) for v in (offset, *size, *stride))
        if not ints or offset < 0 or min(size, default=0) < 0 or min(stride, default=0) < 0 or len(size) != len(stride):
            raise CheckpointError(f"a tensor with offset {offset}, size {size}, stride {stride} is malformed")
        if all(size):  # the last element read must lie inside the storage (as_strided does not check)
            last = offset + sum((n - 1) * st for n, st in zip(size, stride))
            if last >= data.size:
                raise CheckpointError(f"a tensor reads element {last} of a storage of {data.size}: the file is damaged")
        if not size:
            return _widen(data[offset : offset + 1].reshape(()), self.storage.dtype).copy()
        view = np.lib.stride_tricks.as_strided(data[offset:], size, tuple(st * data.itemsize for st in stride))
        return _widen(np.array(view), self.storage.dtype)


class _Plain(pickle.Unpickler):
    """Plain values only (the legacy format's header): every class is refused."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"the file's header holds a {module}.{name} object; it is not a PyTorch checkpoint")


class _Unpickler(pickle.Unpickler):
    """Builds tensors as numpy arrays; refuses every class but the few a state dict holds."""

    def __init__(self, file, load_storage):
        super().__init__(file)
        self._load_storage = load_storage

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_tensor"):
            return _Tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return lambda data, *unused: data
        if module == "torch" and name in _STORAGES:
            return _StorageType(_STORAGES[name])
        if module == "torch" and name in _DTYPES:
            return _DTYPES[name]
        if (module, name) == ("torch.storage", "UntypedStorage"):
            return _StorageType(np.uint8)
        if (module, name) == ("torch", "Size"):
            return tuple
        raise pickle.UnpicklingError(
            f"the file holds a {module}.{name} object; only tensors and plain values are read (no code runs). "
            "Save the state dict alone (torch.save(model.state_dict(), path)) or as .safetensors"
        )

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r}")
        storage_type, key, numel = pid[1], str(pid[2]), pid[4]
        if len(pid) > 5 and pid[5] is not None:
            raise pickle.UnpicklingError("storage views (torch < 1.0 files) are not supported; re-save the state dict")
        if isinstance(storage_type, _StorageType):
            dtype = storage_type.dtype
        elif any(storage_type is d for d in _DTYPES.values()):
            dtype = storage_type
        else:
            raise pickle.UnpicklingError(f"a storage of type {storage_type!r} is not a tensor storage")
        if not isinstance(numel, int) or numel < 0:
            raise pickle.UnpicklingError(f"a storage of {numel!r} elements")
        return self._load_storage(key, dtype, numel)


def _torch_zip(path: Path) -> Any:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if not pkl:
            raise CheckpointError(f"{path}: a zip file without data.pkl is not a PyTorch checkpoint")
        root = pkl[0][: -len("data.pkl")]

        def load(key: str, dtype: Any, numel: int) -> _Storage:
            name = f"{root}data/{key}"
            itemsize = _numpy_dtype(dtype).itemsize
            if z.getinfo(name).file_size != numel * itemsize:
                raise CheckpointError(f"{path}: storage {key} holds {z.getinfo(name).file_size} bytes, not "
                                      f"{numel} x {itemsize}")
            return _Storage(np.frombuffer(z.read(name), _numpy_dtype(dtype)), dtype)

        return _materialize(_Unpickler(io.BytesIO(z.read(pkl[0])), load).load())


def _torch_legacy(path: Path) -> Any:
    """The pre-1.6 format: magic, protocol, sys info, the pickled object, its storage keys, then each
    storage (sorted by key) as an int64 element count and its bytes."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        magic = _Plain(f).load()  # magic number, protocol version, sys info: plain values
        if magic != 0x1950A86A20F9469CFC6C:
            raise CheckpointError(f"{path}: not a PyTorch checkpoint (no zip archive, no legacy magic number)")
        _Plain(f).load()
        _Plain(f).load()
        storages: dict[str, _Storage] = {}

        def load(key: str, dtype: Any, numel: int) -> _Storage:
            if key not in storages:
                if numel * _numpy_dtype(dtype).itemsize > size:
                    raise CheckpointError(f"{path}: storage {key} claims {numel} elements, more than the file holds")
                storages[key] = _Storage(np.empty(numel, _numpy_dtype(dtype)), dtype)
            return storages[key]

        obj = _Unpickler(f, load).load()
        keys = [str(k) for k in _Plain(f).load()]
        if sorted(keys) != sorted(storages):
            raise CheckpointError(f"{path}: the storages listed ({len(keys)}) are not the ones the tensors use "
                                  f"({len(storages)}): the file is damaged")
        for key in keys:
            (n,) = struct.unpack("<q", f.read(8))
            st = storages[key]
            if n != st.data.size:
                raise CheckpointError(f"{path}: storage {key} has {n} elements, its tensors expect {st.data.size}")
            data = np.frombuffer(f.read(n * st.data.itemsize), st.data.dtype)
            if data.size != n:
                raise CheckpointError(f"{path}: truncated (storage {key} has {data.size} of {n} elements)")
            st.data[:] = data
    return _materialize(obj)


def _materialize(obj: Any) -> Any:
    """obj with every _Tensor made a numpy array (its storage read by now)."""
    if isinstance(obj, _Tensor):
        return obj.array()
    if isinstance(obj, dict):
        return type(obj)((k, _materialize(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialize(v) for v in obj)
    return obj


def _unwrap(obj: Any, path: Path) -> dict[str, np.ndarray]:
    if isinstance(obj, dict):
        for key in ("state_dict", "model", "net", "params", "model_state_dict"):
            if isinstance(obj.get(key), dict) and obj[key] and all(
                    isinstance(v, (np.ndarray, dict)) for v in obj[key].values()):
                return _unwrap(obj[key], path)
    if not isinstance(obj, dict) or not obj:
        raise CheckpointError(f"{path}: expected a state dict (name -> tensor), got {type(obj).__name__}")
    flat: dict[str, np.ndarray] = {}

    def walk(prefix: str, d: dict) -> None:
        for k, v in d.items():
            name = f"{prefix}{k}"
            if isinstance(v, dict):
                walk(name + "/", v)
            elif isinstance(v, np.ndarray):
                flat[name] = v
    walk("", obj)
    return _strip_module(flat)


def _strip_module(flat: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A DataParallel state dict ("module.<name>") as the plain one."""
    if flat and all(k.startswith("module.") for k in flat):
        return {k[len("module."):]: v for k, v in flat.items()}
    return flat


def read_state(path: str | Path) -> dict[str, np.ndarray]:
    """{name: array} of a .safetensors, .pth/.pt/.bin (PyTorch) or .npz checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    suffix = path.suffix.lower()
    try:
        if suffix == ".safetensors":
            from safetensors.numpy import load_file

            return _strip_module(load_file(str(path)))
        if suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        if suffix in (".pth", ".pt", ".bin", ".ckpt", ".tar"):
            obj = _torch_zip(path) if zipfile.is_zipfile(path) else _torch_legacy(path)
            return _unwrap(obj, path)
    except CheckpointError:
        raise
    except (pickle.UnpicklingError, zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, struct.error,
            TypeError, AttributeError, IndexError) as e:
        raise CheckpointError(f"{path}: cannot read this {suffix} checkpoint ({type(e).__name__}: {e}); is it "
                              "complete and of this format?") from e
    raise CheckpointError(f"{path}: unknown checkpoint format {suffix!r}; oodjax reads .safetensors, "
                          ".pth/.pt/.bin (PyTorch), .npz (BiT, big_vision) and orbax directories")
