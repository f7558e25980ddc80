"""Training images for the indicators: loaders for the official files, bundled samples, JAX inputs.

Every loader returns images as uint8 ``(n, h, w, 3)`` NHWC RGB arrays with pixel values in [0, 255]
and labels as int32 ``(n,)``, 0-based. Three datasets are known (``DATASETS``):

* ``cifar10``: the official "python version", ``cifar-10-python.tar.gz`` extracted to
  ``cifar-10-batches-py/`` (``data_batch_1`` .. ``data_batch_5``, ``test_batch``).
* ``cifar100``: ``cifar-100-python.tar.gz`` extracted to ``cifar-100-python/`` (``train``,
  ``test``); labels are the 100 fine labels.
* ``imagenet16_120``: NAS-Bench-201's 16x16 downsampled ImageNet (Chrabaszcz et al., 2017):
  ``Imagenet16_train/train_data_batch_1`` .. ``_10`` and ``Imagenet16_val/val_data``, restricted
  to ImageNet classes 1..120 as NAS-Bench-201 does (151,700 train / 6,000 val images).

A missing directory or file raises ``FileNotFoundError`` naming where it looked and the expected
layout; a file that is not what the format promises raises ``ValueError`` naming the file. Nothing
falls back to the bundled samples unless asked to (``load_images(name, None)``).

The input functions (``normalize``, ``augment``, ``sample_batch``, ``region_inputs``) are pure
functions of a PRNG key, jitted with the dataset name (and sizes) static, so they can also be
called inside a caller's ``jax.jit``.
"""
from __future__ import annotations

import functools
import importlib.resources
import os
import pickle
from pathlib import Path
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from monas_jax import io

DATASETS: tuple[str, ...] = ("cifar10", "cifar100", "imagenet16_120")
NUM_CLASSES = {"cifar10": 10, "cifar100": 100, "imagenet16_120": 120}
# Side of the square images, pixels.
IMAGE_SIZE = {"cifar10": 32, "cifar100": 32, "imagenet16_120": 16}
# Per-channel (R, G, B) statistics in [0, 1] pixel units, as NAS-Bench-201 / TE-NAS normalise.
MEAN = {
    "cifar10": tuple(v / 255 for v in (125.3, 123.0, 113.9)),
    "cifar100": tuple(v / 255 for v in (129.3, 124.1, 112.4)),
    "imagenet16_120": tuple(v / 255 for v in (122.68, 116.66, 104.01)),
}
STD = {
    "cifar10": tuple(v / 255 for v in (63.0, 62.1, 66.7)),
    "cifar100": tuple(v / 255 for v in (68.2, 65.4, 70.4)),
    "imagenet16_120": tuple(v / 255 for v in (63.22, 61.26, 65.09)),
}
# Zero padding, pixels per side, of the random-crop augmentation.
PAD = {"cifar10": 4, "cifar100": 4, "imagenet16_120": 2}

_DISPLAY = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet16_120": "ImageNet16-120"}
_BUNDLED = {"cifar10": "cifar10_test_sample.npz", "cifar100": "cifar100_test_sample.npz"}
# NAS-Bench-201's ImageNet16-120 keeps ImageNet labels 1..120 of the 1-based 1..1000.
_IN16_KEEP = 120
_IN16_LABELS = 1000


def _canonical(name: Any) -> str:
  """Dataset name -> one of DATASETS; also accepts NAS-Bench-201 spellings like 'ImageNet16-120'."""
  key = name.strip().lower().replace("-", "_") if isinstance(name, str) else None
  if key not in DATASETS:
    raise ValueError(f"unknown dataset {name!r}; allowed: {', '.join(DATASETS)}")
  return key


# ---------------------------------------------------------------------------------------------
# Reading the official pickles.

# The official files are pickles: unpickling can run arbitrary code, so only the globals that a
# pickled numpy array needs are resolved (Python 2 and 3, numpy 1 and 2 spellings).
_ALLOWED_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    # How Python 3 writes bytes objects at pickle protocol <= 2.
    ("_codecs", "encode"),
})


class _ArrayUnpickler(pickle.Unpickler):

  def find_class(self, module, name):
    if (module, name) not in _ALLOWED_GLOBALS:
      raise pickle.UnpicklingError(
          f"refuses global {module}.{name}: only numpy arrays, lists and numbers are expected")
    return super().find_class(module, name)


def _read_pickle(path: Path) -> dict[str, Any]:
  """Unpickles one batch file into a dict with str keys. Raises ValueError naming `path`."""
  try:
    with open(path, "rb") as f:
      # The CIFAR files are Python 2 pickles whose str objects (keys and raw array bytes) are not
      # ASCII-decodable; encoding="bytes" reads them as bytes, as the CIFAR page recommends.
      obj = _ArrayUnpickler(f, encoding="bytes").load()
  except OSError:
    raise
  except Exception as e:  # Garbage input can surface as almost any exception type.
    raise io.refuse(path, "a dataset batch file (a pickled dict of 'data' and labels, as in the "
                    "official archives)", e) from e
  if not isinstance(obj, dict):
    raise ValueError(f"{path}: expected a pickled dict, found {type(obj).__name__}")
  return {(k.decode("latin1") if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _parse_batch(path: Path, entry: dict[str, Any], label_key: str, size: int,
                 label_range: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
  """Checks one batch dict and decodes it.

  Args:
    path: the file it came from (for messages).
    entry: dict with "data", uint8 (n, 3 * size * size), each row the R plane, then G, then B, each
      plane row-major; and `label_key`, n integers.
    label_key: "labels" or "fine_labels".
    size: image side, pixels.
    label_range: inclusive (low, high) bounds the labels must satisfy.

  Returns:
    x uint8 (n, size, size, 3) NHWC and labels int64 (n,), as stored (not shifted).
  """
  missing = [k for k in ("data", label_key) if k not in entry]
  if missing:
    raise ValueError(f"{path}: missing key(s) {', '.join(map(repr, missing))}; "
                     f"found {', '.join(map(repr, sorted(entry, key=str)))}")
  data = entry["data"]
  row = 3 * size * size
  if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
          and data.shape[1] == row):
    found = (f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray)
             else type(data).__name__)
    raise ValueError(f"{path}: 'data' must be a uint8 array of shape (n, {row}) "
                     f"(3 channels x {size} x {size}, channel-major); found {found}")
  labels = np.asarray(entry[label_key])
  if labels.size == 0:
    labels = labels.astype(np.int64).reshape(0)
  if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
    raise ValueError(f"{path}: {label_key!r} must be a list of integers, "
                     f"found {labels.dtype} values of shape {labels.shape}")
  if labels.shape[0] != data.shape[0]:
    raise ValueError(f"{path}: {labels.shape[0]} labels for {data.shape[0]} images")
  lo, hi = label_range
  if labels.size and (labels.min() < lo or labels.max() > hi):
    raise ValueError(f"{path}: {label_key!r} must lie in [{lo}, {hi}], "
                     f"found values in [{labels.min()}, {labels.max()}]")
  x = data.reshape(-1, 3, size, size).transpose(0, 2, 3, 1)
  return x, labels.astype(np.int64)


def _locate(root: Any, prefixes: Sequence[str], files: Sequence[str], what: str,
            layout: str) -> Path:
  """Finds the folder holding `files`: the first of root/prefix holding any of them.

  Raises FileNotFoundError, naming the folders searched and `layout`, when `root` is missing or
  when the chosen folder lacks some of `files`.
  """
  root = Path(os.path.abspath(os.fspath(root)))
  if not root.exists():
    raise FileNotFoundError(f"{what}: data directory {root} does not exist. {layout}")
  if not root.is_dir():
    raise FileNotFoundError(f"{what}: {root} is a file, not a directory (archives must be "
                            f"extracted first). {layout}")
  candidates = [root / p if p != "." else root for p in prefixes]
  base = next((c for c in candidates if any((c / f).is_file() for f in files)), None)
  if base is None:
    searched = ", ".join(f"{c}/" for c in candidates)
    raise FileNotFoundError(f"{what}: none of {', '.join(files)} found; searched {searched}. "
                            f"{layout}")
  missing = [f for f in files if not (base / f).is_file()]
  if missing:
    raise FileNotFoundError(f"{what}: {base}/ lacks {', '.join(missing)}. {layout}")
  return base


_CIFAR = {
    "cifar10": {
        "folder": "cifar-10-batches-py",
        "archive": "cifar-10-python.tar.gz",
        "splits": {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]},
        "label_key": "labels",
    },
    "cifar100": {
        "folder": "cifar-100-python",
        "archive": "cifar-100-python.tar.gz",
        "splits": {"train": ["train"], "test": ["test"]},
        "label_key": "fine_labels",
    },
}

_IN16_SPLITS = {
    "train": ("Imagenet16_train", [f"train_data_batch_{i}" for i in range(1, 11)]),
    "val": ("Imagenet16_val", ["val_data"]),
}


def _check_split(name: str, split: str, allowed: Sequence[str]) -> None:
  if split not in allowed:
    raise ValueError(f"{_DISPLAY[name]}: unknown split {split!r}; allowed: {', '.join(allowed)}")


def _load_cifar(name: str, root: Any, split: str) -> tuple[np.ndarray, np.ndarray, Path]:
  spec = _CIFAR[name]
  _check_split(name, split, tuple(spec["splits"]))
  files = spec["splits"][split]
  all_files = [f for fs in spec["splits"].values() for f in fs]
  layout = (f"Expected the official {_DISPLAY[name]} python version ({spec['archive']} extracted): "
            f"<data_dir>/{spec['folder']}/ holding {', '.join(all_files)}; data_dir may also be "
            f"the {spec['folder']} folder itself.")
  base = _locate(root, (spec["folder"], "."), files, f"{_DISPLAY[name]} {split} split", layout)
  xs, ys = [], []
  for f in files:
    x, y = _parse_batch(base / f, _read_pickle(base / f), spec["label_key"], 32,
                        (0, NUM_CLASSES[name] - 1))
    xs.append(x)
    ys.append(y)
  return np.concatenate(xs), np.concatenate(ys).astype(np.int32), base


def _load_imagenet16(root: Any, split: str) -> tuple[np.ndarray, np.ndarray, Path]:
  # NAS-Bench-201 reports ImageNet16-120 "test" results on (half of) the val files.
  split = "val" if split == "test" else split
  _check_split("imagenet16_120", split, ("train", "val", "test"))
  sub, files = _IN16_SPLITS[split]
  layout = ("Expected NAS-Bench-201's downsampled ImageNet16 pickles: "
            "<data_dir>/Imagenet16_train/train_data_batch_1 .. train_data_batch_10 and "
            "<data_dir>/Imagenet16_val/val_data; NAS-Bench-201's flat layout (all eleven files "
            "in <data_dir> or <data_dir>/ImageNet16) is accepted too.")
  # The brief's sub-folder layout first, then xautodl's flat folder, either under data_dir or
  # under the ImageNet16 folder that NAS-Bench-201 puts them in.
  prefixes = (sub, ".", f"ImageNet16/{sub}", "ImageNet16")
  base = _locate(root, prefixes, files, f"ImageNet16-120 {split} split", layout)
  xs, ys = [], []
  for f in files:
    x, y = _parse_batch(base / f, _read_pickle(base / f), "labels", 16, (1, _IN16_LABELS))
    # Filtering per file keeps memory near the 120-class subset, not all 1.28 M images.
    keep = y <= _IN16_KEEP
    xs.append(x[keep])
    ys.append(y[keep] - 1)
  return np.concatenate(xs), np.concatenate(ys).astype(np.int32), base


def load_cifar10(root: str | os.PathLike, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
  """Reads the official CIFAR-10 python-version pickles.

  Args:
    root: the folder holding ``cifar-10-batches-py/``, or that folder itself.
    split: "train" (``data_batch_1`` .. ``_5``, 50,000 images) or "test" (``test_batch``, 10,000).

  Returns:
    x uint8 (n, 32, 32, 3) NHWC RGB, y int32 (n,) in [0, 10).

  Raises:
    FileNotFoundError: `root` or a file of the split is missing.
    ValueError: a file is not a pickle of the expected dict, or `split` is unknown.
  """
  x, y, _ = _load_cifar("cifar10", root, split)
  return x, y


def load_cifar100(root: str | os.PathLike, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
  """Reads the official CIFAR-100 python-version pickles (fine labels).

  Args:
    root: the folder holding ``cifar-100-python/``, or that folder itself.
    split: "train" (file ``train``, 50,000 images) or "test" (file ``test``, 10,000).

  Returns:
    x uint8 (n, 32, 32, 3) NHWC RGB, y int32 (n,) fine labels in [0, 100).

  Raises:
    FileNotFoundError: `root` or the split's file is missing.
    ValueError: a file is not a pickle of the expected dict, or `split` is unknown.
  """
  x, y, _ = _load_cifar("cifar100", root, split)
  return x, y


def load_imagenet16_120(root: str | os.PathLike,
                        split: str = "train") -> tuple[np.ndarray, np.ndarray]:
  """Reads NAS-Bench-201's ImageNet16 pickles and keeps the 120-class subset.

  The files hold dicts with "data", uint8 (n, 768) channel-major 16x16 RGB, and "labels", 1-based
  ImageNet classes 1..1000. As NAS-Bench-201 does, only classes 1..120 are kept; they are returned
  0-based.

  Args:
    root: folder holding ``Imagenet16_train/`` and ``Imagenet16_val/`` (or all the files flat,
      NAS-Bench-201's own layout, possibly under an ``ImageNet16/`` sub-folder).
    split: "train" (``train_data_batch_1`` .. ``_10``; 151,700 images kept) or "val" (``val_data``;
      6,000 kept). "test" is accepted for "val", the split NAS-Bench-201 tests on.

  Returns:
    x uint8 (n, 16, 16, 3) NHWC RGB, y int32 (n,) in [0, 120).

  Raises:
    FileNotFoundError: `root` or a file of the split is missing.
    ValueError: a file is not a pickle of the expected dict, or `split` is unknown.
  """
  x, y, _ = _load_imagenet16(root, split)
  return x, y


def _load(name: str, data_dir: Any, split: str) -> tuple[np.ndarray, np.ndarray, Path]:
  if data_dir is None or (isinstance(data_dir, str) and not data_dir.strip()):
    # An empty string would otherwise mean the working directory; say so rather than guess.
    raise ValueError(f"{_DISPLAY[name]}: data_dir is {data_dir!r}; pass a directory "
                     "(load_images(name, None) loads the bundled sample)")
  if name == "imagenet16_120":
    return _load_imagenet16(data_dir, split)
  return _load_cifar(name, data_dir, split)


def load_dataset(name: str, data_dir: str | os.PathLike,
                 split: str = "train") -> tuple[np.ndarray, np.ndarray]:
  """Loads dataset `name` (one of DATASETS) from its official files under `data_dir`.

  Returns:
    x uint8 (n, s, s, 3) NHWC RGB with s = IMAGE_SIZE[name], y int32 (n,) 0-based.

  Raises:
    ValueError: unknown `name` or `split`, or a corrupt file.
    FileNotFoundError: `data_dir` or a file is missing.
  """
  x, y, _ = _load(_canonical(name), data_dir, split)
  return x, y


def load_bundled(name: str) -> tuple[np.ndarray, np.ndarray]:
  """Loads the test-image sample shipped in ``monas_jax/assets`` (provenance in its README).

  CIFAR-10: 2,000 test images, 200 per class, JPEG-decoded so pixels are close to, not identical
  with, the originals. CIFAR-100: 673 test images with exact pixels, all 100 classes (1 to 16 each).

  Returns:
    x uint8 (n, 32, 32, 3) NHWC RGB, y int32 (n,) 0-based.

  Raises:
    ValueError: unknown `name`, or imagenet16_120, for which no sample is bundled.
  """
  name = _canonical(name)
  if name not in _BUNDLED:
    raise ValueError(f"no bundled sample for {name}: no {_DISPLAY[name]} images could be bundled; "
                     "set data_dir to a folder holding Imagenet16_train/train_data_batch_1 .. 10 "
                     "(and Imagenet16_val/val_data)")
  ref = importlib.resources.files("monas_jax") / "assets" / _BUNDLED[name]
  try:
    with ref.open("rb") as f, np.load(f, allow_pickle=False) as z:
      x = np.asarray(z["x"])
      y = np.asarray(z["y"]).astype(np.int32)
  except Exception as e:  # noqa: BLE001  a damaged install: say which file, never unpickle
    raise io.refuse(ref, "the bundled .npz of uint8 images 'x' and labels 'y' (reinstall "
                    "monas_jax)", e) from None
  s = IMAGE_SIZE[name]
  if x.dtype != np.uint8 or x.shape[1:] != (s, s, 3) or y.shape != x.shape[:1]:
    raise ValueError(f"bundled {_BUNDLED[name]}: unexpected x {x.dtype}{x.shape} / y {y.shape}")
  return x, y


def load_images(name: str, data_dir: str | os.PathLike | None,
                split: str = "train") -> tuple[np.ndarray, np.ndarray, str]:
  """Images for the indicators: the official files under `data_dir`, or the bundled sample.

  Args:
    name: one of DATASETS.
    data_dir: a directory as `load_dataset` takes it; None selects the bundled test sample
      (there is none for imagenet16_120).
    split: the split read from `data_dir`; ignored for the bundled sample (test images).

  Returns:
    x uint8 (n, s, s, 3), y int32 (n,), and a description of the source, e.g.
    "bundled:cifar10_test_sample.npz (2000 CIFAR-10 test images)" or
    "dir:/data/cifar-10-batches-py (train split, 50000 images)".
  """
  name = _canonical(name)
  if data_dir is None:
    x, y = load_bundled(name)
    return x, y, f"bundled:{_BUNDLED[name]} ({len(x)} {_DISPLAY[name]} test images)"
  x, y, base = _load(name, data_dir, split)
  split = "val" if (name == "imagenet16_120" and split == "test") else split
  return x, y, f"dir:{base} ({split} split, {len(x)} images)"


# ---------------------------------------------------------------------------------------------
# Inputs for the indicators (pure JAX).

def _check_images(x: jax.Array, what: str) -> None:
  # Float input here would most likely be already normalised; scaling it again would be silent.
  if x.dtype != jnp.uint8:
    raise TypeError(f"{what} must be uint8 pixels in [0, 255], got {x.dtype}")
  if x.ndim != 4 or x.shape[-1] != 3:
    raise ValueError(f"{what} must have shape (n, h, w, 3), got {x.shape}")


def _stats(dataset: str) -> tuple[np.ndarray, np.ndarray]:
  name = _canonical(dataset)
  return np.asarray(MEAN[name], np.float32), np.asarray(STD[name], np.float32)


def spread_indices(key: jax.Array, n: int, count: int) -> jax.Array:
  """(count,) int indices into range(n): distinct when count <= n, else each used ceil or floor
  times (concatenated random permutations)."""
  reps = -(-count // n)
  perms = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(key, reps))
  return perms.reshape(-1)[:count]


@functools.partial(jax.jit, static_argnames=("dataset",))
def normalize(x: jax.Array, dataset: str) -> jax.Array:
  """uint8 pixels (..., 3) -> float32 (x / 255 - MEAN) / STD, per channel (last axis)."""
  x = jnp.asarray(x)
  if x.dtype != jnp.uint8:
    raise TypeError(f"normalize expects uint8 pixels in [0, 255], got {x.dtype}")
  if x.ndim == 0 or x.shape[-1] != 3:
    raise ValueError(f"normalize expects RGB channels last, (..., 3), got shape {x.shape}")
  mean, std = _stats(dataset)
  return (x.astype(jnp.float32) / 255.0 - mean) / std


@functools.partial(jax.jit, static_argnames=("dataset",))
def augment(key: jax.Array, x: jax.Array, dataset: str) -> jax.Array:
  """Training augmentation: random crop with PAD zero padding, then horizontal flip with p = 0.5.

  Each image draws its own crop offset (0 .. 2 * PAD per axis, so PAD is the identity crop) and
  flip, as torchvision's RandomCrop(s, padding=PAD) and RandomHorizontalFlip do per sample.

  Args:
    key: PRNG key.
    x: uint8 (b, h, w, 3) images.
    dataset: one of DATASETS (static); sets PAD.

  Returns:
    uint8 (b, h, w, 3).
  """
  x = jnp.asarray(x)
  _check_images(x, "augment's x")
  p = PAD[_canonical(dataset)]
  b, h, w, c = x.shape
  k_crop, k_flip = jax.random.split(key)
  offsets = jax.random.randint(k_crop, (b, 2), 0, 2 * p + 1)
  flip = jax.random.bernoulli(k_flip, 0.5, (b,))
  padded = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  crops = jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, c)))(
      padded, offsets)
  return jnp.where(flip[:, None, None, None], crops[:, :, ::-1], crops)


@functools.partial(jax.jit, static_argnames=("batch_size", "dataset"))
def sample_batch(key: jax.Array, images: jax.Array, batch_size: int, dataset: str) -> jax.Array:
  """A fresh augmented, normalised minibatch (the NTK input of METHOD 3.1).

  Images are drawn without replacement when batch_size <= n; otherwise every image is used
  floor or ceil(batch_size / n) times. Pass `images` as a device array (jax.device_put) so that a
  large training set is not copied to the device on every call.

  Args:
    key: PRNG key.
    images: uint8 (n, h, w, 3).
    batch_size: b (static).
    dataset: one of DATASETS (static); sets PAD, MEAN and STD.

  Returns:
    float32 (b, h, w, 3).
  """
  images = jnp.asarray(images)
  _check_images(images, "sample_batch's images")
  if images.shape[0] == 0 or batch_size < 1:
    raise ValueError(f"sample_batch needs images and batch_size >= 1; got {images.shape[0]} "
                     f"images, batch_size={batch_size}")
  k_idx, k_aug = jax.random.split(key)
  idx = spread_indices(k_idx, images.shape[0], batch_size)
  return normalize(augment(k_aug, images[idx], dataset), dataset)


@functools.partial(jax.jit, static_argnames=("dataset", "num_samples", "crop"))
def region_inputs(key: jax.Array, images: jax.Array, dataset: str, num_samples: int = 1000,
                  crop: int = 3) -> jax.Array:
  """Inputs of the linear-region count (METHOD 3.2): small single-channel patches.

  Each sample is a crop x crop patch (no padding) at a random position of ONE random colour
  channel c of a random image, normalised with that channel's MEAN[c] and STD[c]. This is TE-NAS's
  RandomCrop(crop) -> Normalize -> RandChannel(1) pipeline; as its shuffled loader does, the
  images of one call are distinct when num_samples <= n.

  Args:
    key: PRNG key.
    images: uint8 (n, h, w, 3), h and w >= crop.
    dataset: one of DATASETS (static).
    num_samples: number of patches (static).
    crop: patch side, pixels (static).

  Returns:
    float32 (num_samples, crop, crop, 1).
  """
  images = jnp.asarray(images)
  _check_images(images, "region_inputs' images")
  n, h, w, _ = images.shape
  if n == 0 or not 1 <= crop <= min(h, w):
    raise ValueError(f"region_inputs needs images and 1 <= crop <= {min(h, w)}; got {n} images, "
                     f"crop={crop}")
  k_img, k_ch, k_y, k_x = jax.random.split(key, 4)
  img = spread_indices(k_img, n, num_samples)
  ch = jax.random.randint(k_ch, (num_samples,), 0, 3)
  ys = jax.random.randint(k_y, (num_samples,), 0, h - crop + 1)
  xs = jax.random.randint(k_x, (num_samples,), 0, w - crop + 1)
  patches = jax.vmap(
      lambda i, c, y, x: jax.lax.dynamic_slice(images, (i, y, x, c), (1, crop, crop, 1))[0])(
          img, ch, ys, xs)
  mean, std = _stats(dataset)
  m = jnp.asarray(mean)[ch][:, None, None, None]
  s = jnp.asarray(std)[ch][:, None, None, None]
  return (patches.astype(jnp.float32) / 255.0 - m) / s
