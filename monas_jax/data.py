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

Besides these, a user's own images (``load_user_dataset``): an image folder
(``DIR/train/<class>/*.png|jpg|jpeg|bmp`` and ``DIR/test/<class>/...`` or ``val/``, any sizes, RGB
or grayscale, decoded with Pillow) or a NumPy archive (``x_train``, ``y_train``, ``x_test``,
``y_test``). Any source is resized to the configured ``image_size`` and kept in 1 or 3 channels
(``fit_images``); a ``DataSpec`` carries what the input functions need (size, channels, classes,
normalisation statistics, crop padding), and every input function takes one wherever it takes a
dataset name.

A missing directory or file raises ``FileNotFoundError`` naming where it looked and the expected
layout; a file that is not what the format promises raises ``ValueError`` naming the file. Nothing
falls back to the bundled samples unless asked to (``load_images(name, None)``).

The input functions (``normalize``, ``augment``, ``sample_batch``, ``region_inputs``) are pure
functions of a PRNG key, jitted with the dataset name (and sizes) static, so they can also be
called inside a caller's ``jax.jit``.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib.resources
import os
import pickle
from pathlib import Path
from typing import Any, Optional, Sequence

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


# CIFAR-10's class names (batches.meta of the official archive), for result records.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                   "truck")


@dataclasses.dataclass(frozen=True)
class DataSpec:
  """What the input functions and networks need to know about a dataset's images.

  Hashable, so it can be a static argument of ``jax.jit`` in place of a dataset name. Two specs
  with the same numbers are equal whatever their names: what is computed from a spec does not
  depend on the name, so the same compiled functions serve both.

  Attributes:
    name: the dataset ("cifar10", ..., or "folder" for a user's own images); messages and
      records only (not compared).
    image_size: side of the square images, pixels.
    channels: 1 (grayscale) or 3 (RGB), the last axis of the uint8 images.
    num_classes: number of classes (labels 0 .. num_classes - 1).
    mean, std: per-channel normalisation statistics in [0, 1] pixel units, one per channel.
    pad: zero padding, pixels per side, of the random-crop augmentation.
  """

  name: str = dataclasses.field(compare=False)
  image_size: int
  channels: int
  num_classes: int
  mean: tuple[float, ...]
  std: tuple[float, ...]
  pad: int


def builtin_spec(name: str) -> DataSpec:
  """The DataSpec of one of DATASETS at its native size: RGB, NAS-Bench-201's statistics."""
  n = _canonical(name)
  return DataSpec(n, IMAGE_SIZE[n], 3, NUM_CLASSES[n], tuple(MEAN[n]), tuple(STD[n]), PAD[n])


def as_spec(dataset: "str | DataSpec") -> DataSpec:
  """A dataset name (one of DATASETS) or a DataSpec -> the DataSpec."""
  return dataset if isinstance(dataset, DataSpec) else builtin_spec(dataset)


def default_pad(image_size: int) -> int:
  """Crop padding for images of side ``image_size``: an eighth of the side (4 pixels at 32, 2 at
  16, as NAS-Bench-201 pads its datasets), at least 1."""
  return max(1, int(image_size) // 8)


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
# A user's own images: an image folder or a NumPy archive, at the configured size and channels.

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
FOLDER_LAYOUT = ("expected an image folder DIR/train/<class>/*.png|jpg|jpeg|bmp with "
                 "DIR/test/<class>/... (or DIR/val/<class>/...), at least 2 classes, or a .npz "
                 "holding x_train, y_train, x_test, y_test")
# Statistics are accumulated over this many images at a time: a float copy of a whole training
# set (50,000 x 32 x 32 x 3 float64 is 1.2 GB) is not needed for two sums.
_STATS_CHUNK = 1024


@dataclasses.dataclass(frozen=True)
class UserData:
  """A user's dataset as read from disk, at the configured size and channels.

  Attributes:
    x_train, x_test: uint8 (n, s, s, c) NHWC, s = image_size, c = channels.
    y_train, y_test: int32 (n,) labels in [0, len(class_names)).
    class_names: the classes, label order (sorted folder names, or the archive's).
    source: e.g. "folder:/data/pets (train 1200 images, test 300, 3 classes, 48x48x1)".
    skipped: paths of files in the folders that are not images by their extension (skipped).
    test_split: "test" or "val" (the folder the evaluation images came from).
  """

  x_train: np.ndarray
  y_train: np.ndarray
  x_test: np.ndarray
  y_test: np.ndarray
  class_names: tuple[str, ...]
  source: str
  skipped: tuple[str, ...] = ()
  test_split: str = "test"


def fit_images(x: np.ndarray, image_size: int, channels: int, what: str = "images") -> np.ndarray:
  """uint8 (n, h, w, c_in) with c_in 1 or 3 (or (n, h, w)) -> uint8 (n, s, s, channels).

  Resized with Pillow's bilinear filter (antialiased when shrinking) to ``image_size`` square,
  ignoring the aspect ratio (as torchvision's ``Resize((s, s))``); images already at that size
  keep their exact pixels. RGB -> grayscale by Pillow's ITU-R 601 luma; grayscale -> RGB repeats
  the channel.
  """
  x = np.asarray(x)
  if x.ndim == 3:
    x = x[..., None]
  if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3):
    raise ValueError(f"{what}: expected uint8 pixels of shape (n, h, w), (n, h, w, 1) or "
                     f"(n, h, w, 3), found {x.dtype} {x.shape}")
  if x.shape[1:] == (image_size, image_size, channels):
    return x
  from PIL import Image
  out = np.empty((len(x), image_size, image_size, channels), np.uint8)
  for i, im in enumerate(x):
    out[i] = _fit_one(Image.fromarray(im[..., 0] if im.shape[-1] == 1 else im), image_size,
                      channels)
  return out


def _fit_one(img, image_size: int, channels: int) -> np.ndarray:
  """A Pillow image -> uint8 (s, s, channels)."""
  from PIL import Image
  img = img.convert("RGB" if channels == 3 else "L")
  if img.size != (image_size, image_size):
    img = img.resize((image_size, image_size), Image.BILINEAR)
  a = np.asarray(img, np.uint8)
  return a[..., None] if channels == 1 else a


def channel_stats(x: np.ndarray) -> tuple[tuple[float, ...], tuple[float, ...]]:
  """Per-channel mean and (population) std of uint8 images (n, h, w, c), in [0, 1] pixel units."""
  c = x.shape[-1]
  s1, s2, count = np.zeros(c), np.zeros(c), 0
  for i in range(0, len(x), _STATS_CHUNK):
    chunk = x[i:i + _STATS_CHUNK].reshape(-1, c).astype(np.float64) / 255.0
    s1 += chunk.sum(axis=0)
    s2 += (chunk * chunk).sum(axis=0)
    count += len(chunk)
  mean = s1 / max(count, 1)
  std = np.sqrt(np.maximum(s2 / max(count, 1) - mean * mean, 0.0))
  return tuple(float(v) for v in mean), tuple(float(v) for v in std)


def _image_files(folder: Path) -> tuple[list[Path], list[Path]]:
  """(image files, other files) under ``folder``, recursively, by extension."""
  images, other = [], []
  for dirpath, dirnames, filenames in os.walk(folder):
    dirnames.sort()
    for f in sorted(filenames):
      p = Path(dirpath) / f
      (images if p.suffix.lower() in IMAGE_EXTENSIONS else other).append(p)
  return images, other


def _class_dirs(split_dir: Path) -> list[str]:
  return sorted(d.name for d in split_dir.iterdir() if d.is_dir() and not d.name.startswith("."))


def _read_image(path: Path, image_size: int, channels: int) -> np.ndarray:
  """One image file -> uint8 (s, s, channels); a one-line ValueError naming it when unreadable."""
  from PIL import Image
  try:
    with Image.open(path) as img:
      img.load()  # decodes now, so a truncated file fails here with its name
      return _fit_one(img, image_size, channels)
  except Exception as e:  # noqa: BLE001  Pillow raises many types for damaged files
    raise io.refuse(path, "a readable PNG, JPEG or BMP image", e) from None


def _list_split(root: Path, split: str, classes: Sequence[str]
                ) -> tuple[list[tuple[str, int, Path]], list[Path]]:
  """((file name, label, path) of every image of ``root/split/<class>/``, other files).

  Ordered by file name, then class, so that a folder written from an array under numbered file
  names (as benchmarks/make_image_folder.py does) reads back in the array's order.
  """
  entries, skipped = [], []
  for label, name in enumerate(classes):
    folder = root / split / name
    images, other = _image_files(folder)
    skipped += other
    if not images:
      raise ValueError(f"{folder}: class {name!r} has no image files in the {split} split "
                       f"(.png, .jpg, .jpeg, .bmp; {len(other)} other file(s) skipped); every "
                       "class needs images in both splits")
    entries += [(p.name, label, p) for p in images]
  entries.sort(key=lambda e: (e[0], e[1]))
  return entries, skipped


def _decode(entries, image_size: int, channels: int) -> tuple[np.ndarray, np.ndarray]:
  x = np.empty((len(entries), image_size, image_size, channels), np.uint8)
  for i, (_, _, path) in enumerate(entries):
    x[i] = _read_image(path, image_size, channels)
  return x, np.array([label for _, label, _ in entries], np.int32)


def _read_folder(root: Path, image_size: int, channels: int) -> UserData:
  train_dir = root / "train"
  if not train_dir.is_dir():
    found = ", ".join(sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())[:8])
    raise FileNotFoundError(f"{root}: no train/ folder (found: {found or 'nothing, it is empty'}); "
                            f"{FOLDER_LAYOUT}")
  test_name = next((n for n in ("test", "val") if (root / n).is_dir()), None)
  if test_name is None:
    raise FileNotFoundError(f"{root}: no test/ or val/ folder beside train/; {FOLDER_LAYOUT}")
  classes = _class_dirs(train_dir)
  if not classes:
    images, other = _image_files(train_dir)
    what = (f"{len(images)} image file(s) directly in it, not in class folders" if images
            else "it is empty" if not other else f"only {len(other)} non-image file(s)")
    raise ValueError(f"{train_dir}: no class folders ({what}); {FOLDER_LAYOUT}")
  if len(classes) < 2:
    raise ValueError(f"{train_dir}: only one class folder ({classes[0]!r}); a classifier needs "
                     f"at least 2 classes")
  test_classes = _class_dirs(root / test_name)
  missing = [c for c in classes if c not in test_classes]
  if missing:
    raise ValueError(f"{root / test_name}: class folder(s) {', '.join(map(repr, missing))} of "
                     f"train/ missing (every one of the {len(classes)} classes of train/ needs "
                     f"test images)")
  extra = [c for c in test_classes if c not in classes]
  if extra:
    raise ValueError(f"{root / test_name}: class folder(s) {', '.join(map(repr, extra))} not in "
                     f"train/ (the classes are train/'s: {', '.join(classes)})")
  # Both splits are listed before any image is decoded: an empty class fails at once.
  e_tr, sk_tr = _list_split(root, "train", classes)
  e_te, sk_te = _list_split(root, test_name, classes)
  x_tr, y_tr = _decode(e_tr, image_size, channels)
  x_te, y_te = _decode(e_te, image_size, channels)
  top_other = [p for p in (root / "train").iterdir() if p.is_file()]
  top_other += [p for p in (root / test_name).iterdir() if p.is_file()]
  skipped = tuple(str(p) for p in sk_tr + sk_te + top_other)
  source = (f"folder:{root} (train {len(x_tr)} images, {test_name} {len(x_te)}, {len(classes)} "
            f"classes, {image_size}x{image_size}x{channels})")
  return UserData(x_tr, y_tr, x_te, y_te, tuple(classes), source, skipped, test_name)


def _npz_labels(path: Path, name: str, y: np.ndarray, n: int) -> np.ndarray:
  if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
    raise ValueError(f"{path}: {name} must be a 1-D array of integer labels, found {y.dtype} "
                     f"{y.shape}")
  if len(y) != n:
    raise ValueError(f"{path}: {name} has {len(y)} labels for {n} images in "
                     f"x_{name[2:]} (one label per image expected)")
  if len(y) and y.min() < 0:
    raise ValueError(f"{path}: {name} holds label {int(y.min())}; labels must be 0 .. classes - 1")
  return y.astype(np.int64)


def _read_npz(path: Path, image_size: int, channels: int) -> UserData:
  what = "a .npz of uint8 images x_train, x_test and integer labels y_train, y_test"
  try:
    with np.load(path, allow_pickle=False) as z:
      arrays = {k: np.asarray(z[k]) for k in z.files}
  except Exception as e:  # noqa: BLE001  a damaged or foreign file: name it, never unpickle
    raise io.refuse(path, what, e) from None
  missing = [k for k in NPZ_ARRAYS if k not in arrays]
  if missing:
    raise ValueError(f"{path}: lacks {', '.join(missing)} (found "
                     f"{', '.join(sorted(arrays)) or 'no arrays'}); expected arrays "
                     f"{', '.join(NPZ_ARRAYS)} and optionally class_names")
  xs = {}
  for split in ("train", "test"):
    x = arrays[f"x_{split}"]
    if x.dtype != np.uint8 or x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] not in (1, 3)):
      raise ValueError(f"{path}: x_{split} must be uint8 pixels (n, h, w), (n, h, w, 1) or "
                       f"(n, h, w, 3), found {x.dtype} {x.shape}")
    xs[split] = x
  y_tr = _npz_labels(path, "y_train", arrays["y_train"], len(xs["train"]))
  y_te = _npz_labels(path, "y_test", arrays["y_test"], len(xs["test"]))
  if "class_names" in arrays:
    names = tuple(str(v) for v in arrays["class_names"].reshape(-1))
    allowed = f"the {len(names)} class_names"
  else:
    names = tuple(str(i) for i in range(int(y_tr.max()) + 1 if len(y_tr) else 0))
    allowed = f"the classes 0 .. {len(names) - 1} of y_train"
  for name, y in (("y_train", y_tr), ("y_test", y_te)):
    if len(y) and y.max() >= len(names):
      raise ValueError(f"{path}: {name} holds label {int(y.max())}, outside {allowed} "
                       f"(labels 0 .. {len(names) - 1})")
  if len(names) < 2:
    raise ValueError(f"{path}: y_train holds {len(names)} class(es); a classifier needs at least 2")
  for name, y in (("y_train", y_tr), ("y_test", y_te)):
    absent = sorted(set(range(len(names))) - set(np.unique(y).tolist()))
    if absent:
      raise ValueError(f"{path}: {name} has no images of class(es) "
                       f"{', '.join(names[i] for i in absent[:5])}; every class needs images in "
                       "both splits")
  x_tr = fit_images(xs["train"], image_size, channels, f"{path} x_train")
  x_te = fit_images(xs["test"], image_size, channels, f"{path} x_test")
  source = (f"npz:{path} (train {len(x_tr)} images, test {len(x_te)}, {len(names)} classes, "
            f"{image_size}x{image_size}x{channels})")
  return UserData(x_tr, y_tr.astype(np.int32), x_te, y_te.astype(np.int32), names, source)


def load_user_dataset(data_dir: str | os.PathLike, image_size: int, channels: int) -> UserData:
  """Reads a user's dataset: an image folder or a .npz archive, every check before any compute.

  Args:
    data_dir: a folder ``DIR/train/<class>/...`` with ``DIR/test/<class>/...`` (or ``val/``),
      image files .png, .jpg, .jpeg or .bmp (other files are skipped and listed in
      ``UserData.skipped``); or a ``.npz`` with uint8 ``x_train``, ``x_test`` ((n, h, w) or
      (n, h, w, 1 or 3)), integer ``y_train``, ``y_test`` and optionally ``class_names``.
    image_size: side, pixels, every image is resized to.
    channels: 1 (grayscale) or 3 (RGB).

  Returns:
    UserData, images uint8 (n, image_size, image_size, channels), labels int32 (n,).

  Raises:
    FileNotFoundError: ``data_dir`` or its train/ or test/ folder is missing.
    ValueError: one line naming the file or folder: an empty folder, a single class, a class
      missing from the test split, an unreadable image, an archive without the four arrays or
      with mismatched lengths, a label outside the classes.
  """
  if channels not in (1, 3):
    raise ValueError(f"channels = {channels!r}: expected 1 (grayscale) or 3 (RGB)")
  root = Path(os.path.abspath(os.fspath(data_dir)))
  if not root.exists():
    raise FileNotFoundError(f"{root}: does not exist; {FOLDER_LAYOUT}")
  if root.is_file():
    if root.suffix.lower() != ".npz":
      raise ValueError(f"{root}: a file that is not a .npz; {FOLDER_LAYOUT}")
    return _read_npz(root, image_size, channels)
  return _read_folder(root, image_size, channels)


# ---------------------------------------------------------------------------------------------
# The images of a config (search, training, export): fields, validation, reading, statistics.

USER_DATASETS = ("folder",)


def command_config(dataset: str):
  """The fields every command's config starts with, in a new unlocked ConfigDict: ``dataset``,
  ``data_dir`` (None: the bundled sample), the data fields of ``add_config_fields`` and
  ``seed`` (0). Raises ValueError for a dataset outside DATASETS + USER_DATASETS."""
  import ml_collections
  known = DATASETS + USER_DATASETS
  if dataset not in known:
    raise ValueError(f"dataset must be one of {known}, got {dataset!r}")
  c = ml_collections.ConfigDict()
  c.dataset = dataset
  # The dataset's files (None: the bundled sample); for 'folder' the image folder or the .npz.
  c.data_dir = ml_collections.FieldReference(None, field_type=str)
  add_config_fields(c, dataset)
  c.seed = 0
  return c


def add_config_fields(c, dataset: str) -> None:
  """Adds the data fields every command's config shares to ``c`` (an unlocked ConfigDict).

  ``dataset`` (one of DATASETS, or "folder" for a user's image folder or .npz) and ``data_dir``
  are set by the caller; this adds ``image_size`` (None = the dataset's native size),
  ``image_channels`` (1 or 3), ``norm_mean`` / ``norm_std`` (None = NAS-Bench-201's for its
  datasets in RGB, else computed from the training split) and ``num_classes`` (filled in from
  the data by ``resolve_config``).
  """
  import ml_collections
  c.image_size = ml_collections.FieldReference(32 if dataset in USER_DATASETS else None,
                                               field_type=int)
  c.image_channels = 3
  c.norm_mean = ml_collections.FieldReference(None, field_type=tuple)
  c.norm_std = ml_collections.FieldReference(None, field_type=tuple)
  c.num_classes = ml_collections.FieldReference(None, field_type=int)


def check_config_fields(c) -> None:
  """Raises a one-line ValueError naming the first bad data field of a config (before any I/O)."""
  def fail(field, value, allowed):
    raise ValueError(f"config.{field} = {value!r} is not allowed: {allowed}")

  known = DATASETS + USER_DATASETS
  if c.dataset not in known:
    fail("dataset", c.dataset, f"one of {known}")
  if c.dataset in USER_DATASETS and (c.data_dir is None or not str(c.data_dir).strip()):
    fail("data_dir", c.data_dir, "an image folder DIR (DIR/train/<class>/*.png|jpg|jpeg|bmp and "
         "DIR/test/<class>/...) or a .npz file, for dataset 'folder'")
  if "image_size" not in c:  # an older config without the data fields
    return
  s = c.image_size
  if s is not None and (not isinstance(s, int) or isinstance(s, bool) or s < 8 or s % 4):
    fail("image_size", s, "None (the dataset's native size) or a multiple of 4, at least 8 (the "
         "network halves it twice)")
  if c.image_channels not in (1, 3):
    fail("image_channels", c.image_channels, "1 (grayscale) or 3 (RGB)")
  for f in ("norm_mean", "norm_std"):
    v = c[f]
    if v is None:
      continue
    ok = len(v) == c.image_channels and all(isinstance(x, (int, float)) for x in v)
    if ok and f == "norm_std":
      ok = all(float(x) > 0 for x in v)
    if not ok:
      fail(f, tuple(v), f"None or {c.image_channels} number(s), one per channel, in [0, 1] pixel "
           f"units{' and positive' if f == 'norm_std' else ''}")
  if (c.norm_mean is None) != (c.norm_std is None):
    fail("norm_std" if c.norm_std is None else "norm_mean", None, "given together with "
         f"config.{'norm_mean' if c.norm_std is None else 'norm_std'} (or both None)")
  if c.num_classes is not None and (not isinstance(c.num_classes, int) or c.num_classes < 2):
    fail("num_classes", c.num_classes, "None (from the data) or an integer >= 2")


def image_size_of(c) -> int:
  """The side (pixels) a config's images are resized to."""
  size = c.get("image_size")
  return IMAGE_SIZE[c.dataset] if size is None else int(size)


def _native(c) -> bool:
  """Whether a config's images are NAS-Bench-201's as they are: its dataset, size and RGB."""
  return (c.dataset in DATASETS and image_size_of(c) == IMAGE_SIZE[c.dataset]
          and c.get("image_channels", 3) == 3)


def config_spec(c) -> DataSpec:
  """The DataSpec of a config (after ``resolve_config`` for anything but NAS-Bench-201's datasets
  at their native sizes in RGB, whose classes and statistics are known without reading images).

  Raises ValueError when the config still needs its images read for them.
  """
  size, ch = image_size_of(c), int(c.get("image_channels", 3))
  builtin = c.dataset in DATASETS
  n_cls = NUM_CLASSES[c.dataset] if builtin else c.get("num_classes")
  mean, std = c.get("norm_mean"), c.get("norm_std")
  if mean is None and _native(c):
    mean, std = MEAN[c.dataset], STD[c.dataset]
  if n_cls is None or mean is None:
    raise ValueError(f"config of dataset {c.dataset!r} has no class count or normalisation "
                     "statistics yet: read its images first (data.read_config_images, then "
                     "data.resolve_config)")
  pad = PAD[c.dataset] if builtin and size == IMAGE_SIZE[c.dataset] else default_pad(size)
  return DataSpec(c.dataset, size, ch, int(n_cls), tuple(float(v) for v in mean),
                  tuple(float(v) for v in std), pad)


@dataclasses.dataclass(frozen=True)
class ConfigImages:
  """A config's images, read and checked, with what a result records about them.

  Attributes:
    x_train, y_train: uint8 (n, s, s, c) and int32 (n,): what a search scores on (the training
      split; the bundled sample when no data_dir is given for NAS-Bench-201's datasets).
    x_test, y_test: the test (or val) split of a user's dataset; None for NAS-Bench-201's (their
      test split is read by training only).
    spec: the DataSpec (statistics computed from x_train where the config gives none).
    source: one line, e.g. "folder:/data/pets (train 1200 images, ...)".
    record: JSON-able description for results (``data`` field): source, classes and counts per
      split, size, channels, statistics and where they came from, skipped files.
  """

  x_train: np.ndarray
  y_train: np.ndarray
  x_test: Optional[np.ndarray]
  y_test: Optional[np.ndarray]
  spec: DataSpec
  source: str
  record: dict


def read_config_images(c, split: str = "train") -> ConfigImages:
  """Reads and checks a config's images (``dataset``, ``data_dir``, ``image_size``,
  ``image_channels``, ``norm_mean``/``norm_std``) before any compute.

  NAS-Bench-201's datasets: ``split`` of the official files under ``data_dir``, or the bundled
  sample (``load_images``), resized and converted when the config asks for another size or
  channels. Dataset "folder": ``load_user_dataset`` (both splits, x_train the training split).
  Statistics: the config's, else NAS-Bench-201's for its datasets in RGB, else computed from
  x_train (per channel, [0, 1] pixel units).
  """
  check_config_fields(c)
  size, ch = image_size_of(c), int(c.get("image_channels", 3))
  skipped: tuple[str, ...] = ()
  x_te = y_te = None
  test_split = None
  if c.dataset in DATASETS:
    x, y, source = load_images(c.dataset, c.data_dir, split)
    if not _native(c):
      x = fit_images(x, size, ch, source)
      source += f", resized to {size}x{size}x{ch}"
    names = (CIFAR10_CLASSES if c.dataset == "cifar10"
             else tuple(str(i) for i in range(NUM_CLASSES[c.dataset])))
    n_cls = NUM_CLASSES[c.dataset]
  else:
    u = load_user_dataset(c.data_dir, size, ch)
    x, y, x_te, y_te, names, source, skipped = (u.x_train, u.y_train, u.x_test, u.y_test,
                                                u.class_names, u.source, u.skipped)
    test_split = u.test_split
    n_cls = len(names)
    if c.get("num_classes") is not None and c.num_classes != n_cls:
      raise ValueError(f"config.num_classes = {c.num_classes} is not allowed: {c.data_dir} holds "
                       f"{n_cls} classes (leave it None)")
  if c.get("norm_mean") is not None:
    mean, std, stats = tuple(c.norm_mean), tuple(c.norm_std), "given in the config"
  elif _native(c):
    mean, std, stats = MEAN[c.dataset], STD[c.dataset], "NAS-Bench-201's (METHOD.md 3.1)"
  else:
    mean, std = channel_stats(x)
    stats = f"computed from the {len(x)} training images"
  pad = PAD[c.dataset] if c.dataset in DATASETS and size == IMAGE_SIZE[c.dataset] else (
      default_pad(size))
  spec = DataSpec(c.dataset, size, ch, n_cls, tuple(float(v) for v in mean),
                  tuple(float(v) for v in std), pad)
  counts = {"train": np.bincount(y, minlength=n_cls).tolist()}
  if y_te is not None:
    counts[test_split] = np.bincount(y_te, minlength=n_cls).tolist()
  record = {"source": source, "dataset": c.dataset, "image_size": size, "channels": ch,
            "num_classes": n_cls, "classes": list(names), "class_counts": counts,
            "norm_mean": list(spec.mean), "norm_std": list(spec.std), "norm_stats": stats,
            "skipped_files": len(skipped), "skipped_examples": list(skipped[:5])}
  if test_split is not None:
    record["test_split"] = test_split
  return ConfigImages(x, y, x_te, y_te, spec, source, record)


def resolve_config(c, spec: DataSpec):
  """A copy of config ``c`` with ``num_classes`` (user datasets) and ``norm_mean``/``norm_std``
  (where None and not NAS-Bench-201's) filled in from ``spec``, so that ``config_spec`` gives
  ``spec`` back and the result's config records what was used."""
  out = c.copy_and_resolve_references()
  with out.unlocked():
    if "num_classes" in out and out.dataset not in DATASETS:
      out.num_classes = spec.num_classes
    if "norm_mean" in out and out.norm_mean is None and not _native(out):
      out.norm_mean, out.norm_std = tuple(spec.mean), tuple(spec.std)
  if c.is_locked:
    out.lock()
  return out


# ---------------------------------------------------------------------------------------------
# Inputs for the indicators (pure JAX).

def _check_images(x: jax.Array, what: str, channels: int = 3) -> None:
  # Float input here would most likely be already normalised; scaling it again would be silent.
  if x.dtype != jnp.uint8:
    raise TypeError(f"{what} must be uint8 pixels in [0, 255], got {x.dtype}")
  if x.ndim != 4 or x.shape[-1] != channels:
    raise ValueError(f"{what} must have shape (n, h, w, {channels}), got {x.shape}")


def _stats(dataset: "str | DataSpec") -> tuple[np.ndarray, np.ndarray]:
  spec = as_spec(dataset)
  return np.asarray(spec.mean, np.float32), np.asarray(spec.std, np.float32)


def spread_indices(key: jax.Array, n: int, count: int) -> jax.Array:
  """(count,) int indices into range(n): distinct when count <= n, else each used ceil or floor
  times (concatenated random permutations)."""
  reps = -(-count // n)
  perms = jax.vmap(lambda k: jax.random.permutation(k, n))(jax.random.split(key, reps))
  return perms.reshape(-1)[:count]


@functools.partial(jax.jit, static_argnames=("dataset",))
def normalize(x: jax.Array, dataset: "str | DataSpec") -> jax.Array:
  """uint8 pixels (..., c) -> float32 (x / 255 - mean) / std, per channel (last axis).

  ``dataset``: one of DATASETS (NAS-Bench-201's MEAN and STD, c = 3) or a DataSpec (its mean and
  std, c = its channels).
  """
  x = jnp.asarray(x)
  c = as_spec(dataset).channels
  if x.dtype != jnp.uint8:
    raise TypeError(f"normalize expects uint8 pixels in [0, 255], got {x.dtype}")
  if x.ndim == 0 or x.shape[-1] != c:
    raise ValueError(f"normalize expects {c} channel(s) last, (..., {c}), got shape {x.shape}")
  mean, std = _stats(dataset)
  return (x.astype(jnp.float32) / 255.0 - mean) / std


@functools.partial(jax.jit, static_argnames=("dataset",))
def augment(key: jax.Array, x: jax.Array, dataset: "str | DataSpec") -> jax.Array:
  """Training augmentation: random crop with PAD zero padding, then horizontal flip with p = 0.5.

  Each image draws its own crop offset (0 .. 2 * PAD per axis, so PAD is the identity crop) and
  flip, as torchvision's RandomCrop(s, padding=PAD) and RandomHorizontalFlip do per sample.

  Args:
    key: PRNG key.
    x: uint8 (b, h, w, c) images.
    dataset: one of DATASETS or a DataSpec (static); sets PAD (the spec's pad) and c.

  Returns:
    uint8 (b, h, w, c).
  """
  x = jnp.asarray(x)
  spec = as_spec(dataset)
  _check_images(x, "augment's x", spec.channels)
  p = spec.pad
  b, h, w, c = x.shape
  k_crop, k_flip = jax.random.split(key)
  offsets = jax.random.randint(k_crop, (b, 2), 0, 2 * p + 1)
  flip = jax.random.bernoulli(k_flip, 0.5, (b,))
  padded = jnp.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
  crops = jax.vmap(lambda im, o: jax.lax.dynamic_slice(im, (o[0], o[1], 0), (h, w, c)))(
      padded, offsets)
  return jnp.where(flip[:, None, None, None], crops[:, :, ::-1], crops)


@functools.partial(jax.jit, static_argnames=("batch_size", "dataset"))
def sample_batch(key: jax.Array, images: jax.Array, batch_size: int,
                 dataset: "str | DataSpec") -> jax.Array:
  """A fresh augmented, normalised minibatch (the NTK input of METHOD 3.1).

  Images are drawn without replacement when batch_size <= n; otherwise every image is used
  floor or ceil(batch_size / n) times. Pass `images` as a device array (jax.device_put) so that a
  large training set is not copied to the device on every call.

  Args:
    key: PRNG key.
    images: uint8 (n, h, w, c).
    batch_size: b (static).
    dataset: one of DATASETS or a DataSpec (static); sets the padding, mean and std.

  Returns:
    float32 (b, h, w, c).
  """
  images = jnp.asarray(images)
  _check_images(images, "sample_batch's images", as_spec(dataset).channels)
  if images.shape[0] == 0 or batch_size < 1:
    raise ValueError(f"sample_batch needs images and batch_size >= 1; got {images.shape[0]} "
                     f"images, batch_size={batch_size}")
  k_idx, k_aug = jax.random.split(key)
  idx = spread_indices(k_idx, images.shape[0], batch_size)
  return normalize(augment(k_aug, images[idx], dataset), dataset)


@functools.partial(jax.jit, static_argnames=("dataset", "num_samples", "crop"))
def region_inputs(key: jax.Array, images: jax.Array, dataset: "str | DataSpec",
                  num_samples: int = 1000,
                  crop: int = 3) -> jax.Array:
  """Inputs of the linear-region count (METHOD 3.2): small single-channel patches.

  Each sample is a crop x crop patch (no padding) at a random position of ONE random colour
  channel c of a random image, normalised with that channel's MEAN[c] and STD[c]. This is TE-NAS's
  RandomCrop(crop) -> Normalize -> RandChannel(1) pipeline; as its shuffled loader does, the
  images of one call are distinct when num_samples <= n.

  Args:
    key: PRNG key.
    images: uint8 (n, h, w, c), h and w >= crop.
    dataset: one of DATASETS or a DataSpec (static): c and the statistics.
    num_samples: number of patches (static).
    crop: patch side, pixels (static).

  Returns:
    float32 (num_samples, crop, crop, 1).
  """
  images = jnp.asarray(images)
  spec = as_spec(dataset)
  _check_images(images, "region_inputs' images", spec.channels)
  n, h, w, _ = images.shape
  if n == 0 or not 1 <= crop <= min(h, w):
    raise ValueError(f"region_inputs needs images and 1 <= crop <= {min(h, w)}; got {n} images, "
                     f"crop={crop}")
  k_img, k_ch, k_y, k_x = jax.random.split(key, 4)
  img = spread_indices(k_img, n, num_samples)
  ch = jax.random.randint(k_ch, (num_samples,), 0, spec.channels)
  ys = jax.random.randint(k_y, (num_samples,), 0, h - crop + 1)
  xs = jax.random.randint(k_x, (num_samples,), 0, w - crop + 1)
  patches = jax.vmap(
      lambda i, c, y, x: jax.lax.dynamic_slice(images, (i, y, x, c), (1, crop, crop, 1))[0])(
          img, ch, ys, xs)
  mean, std = _stats(dataset)
  m = jnp.asarray(mean)[ch][:, None, None, None]
  s = jnp.asarray(std)[ch][:, None, None, None]
  return (patches.astype(jnp.float32) / 255.0 - m) / s
