"""Tests for monas_jax.data: the official on-disk formats, errors, augmentation and input sampling.

The dataset fixtures are written in the formats of the official files, from real bundled images:
CIFAR as Python 2 cPickle protocol-2 dicts with byte-string keys (what ``cifar-10-python.tar.gz``
and ``cifar-100-python.tar.gz`` hold), ImageNet16 as the Python 3 protocol-3 dicts with str keys
that the downsampled-ImageNet scripts wrote and NAS-Bench-201 reads.
"""
from __future__ import annotations

import io
import os
import pickle
import pickletools
import struct

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from monas_jax import data

IN16 = "imagenet16_120"


# ---------------------------------------------------------------------------------------------
# Writers of the official formats.

class _Py3Pickler(pickle._Pickler):
  """Pure-Python pickler that names numpy's reconstructor as numpy 1 did (``numpy.core``).

  The official files predate numpy 2, which would write ``numpy._core``; a reader must cope with
  the old spelling.
  """

  dispatch = pickle._Pickler.dispatch.copy()

  def save_global(self, obj, name=None):
    name = name or obj.__qualname__
    module = obj.__module__.replace("numpy._core", "numpy.core")
    self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode("ascii"))
    self.memoize(obj)


class _Py2Pickler(_Py3Pickler):
  """Writes what Python 2's cPickle wrote: every string (keys, labels, raw array bytes, dtype
  codes) as a Python 2 ``str`` (SHORT_BINSTRING / BINSTRING), which Python 3 cannot decode as
  ASCII and reads back as bytes under ``encoding="bytes"``."""

  dispatch = _Py3Pickler.dispatch.copy()

  def _save_py2_str(self, obj):
    raw = obj.encode("latin1") if isinstance(obj, str) else obj
    if len(raw) < 256:
      self.write(pickle.SHORT_BINSTRING + bytes([len(raw)]) + raw)
    else:
      self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)
    self.memoize(raw)

  dispatch[bytes] = _save_py2_str
  dispatch[str] = _save_py2_str


def _dump(path, obj, py2):
  buf = io.BytesIO()
  if py2:
    _Py2Pickler(buf, protocol=2).dump(obj)
  else:
    _Py3Pickler(buf, protocol=3).dump(obj)
  path.write_bytes(buf.getvalue())


def _rows(x):
  """(n, s, s, 3) NHWC -> (n, 3 * s * s): the R plane, then G, then B, each row-major."""
  return np.ascontiguousarray(x.transpose(0, 3, 1, 2)).reshape(len(x), -1)


def _cifar10_batch(label, x, y, first):
  # Key order as the official dicts list them under Python 3.
  return {
      b"batch_label": label.encode(),
      b"labels": [int(v) for v in y],
      b"data": _rows(x),
      b"filenames": [f"image_{first + i:05d}.png".encode() for i in range(len(x))],
  }


def write_cifar10(root, x_train, y_train, x_test, y_test):
  """Writes ``root/cifar-10-batches-py`` as the official archive holds it (5 train batches)."""
  d = root / "cifar-10-batches-py"
  d.mkdir(parents=True)
  for i, idx in enumerate(np.array_split(np.arange(len(x_train)), 5), 1):
    _dump(d / f"data_batch_{i}",
          _cifar10_batch(f"training batch {i} of 5", x_train[idx], y_train[idx], idx[0]), py2=True)
  _dump(d / "test_batch", _cifar10_batch("testing batch 1 of 1", x_test, y_test, 0), py2=True)
  _dump(d / "batches.meta", {b"num_cases_per_batch": 10000, b"num_vis": 3072,
                             b"label_names": [f"class_{i}".encode() for i in range(10)]}, py2=True)
  return d


def write_cifar100(root, x_train, y_train, x_test, y_test):
  """Writes ``root/cifar-100-python`` (files ``train``, ``test``, ``meta``)."""
  d = root / "cifar-100-python"
  d.mkdir(parents=True)
  for fname, label, x, y in (("train", "training batch 1 of 1", x_train, y_train),
                             ("test", "testing batch 1 of 1", x_test, y_test)):
    _dump(d / fname, {
        b"filenames": [f"image_{i:05d}.png".encode() for i in range(len(x))],
        b"batch_label": label.encode(),
        b"fine_labels": [int(v) for v in y],
        # Placeholder superclasses: the loader reads fine labels only.
        b"coarse_labels": [int(v) // 5 for v in y],
        b"data": _rows(x),
    }, py2=True)
  _dump(d / "meta", {b"fine_label_names": [f"fine_{i}".encode() for i in range(100)],
                     b"coarse_label_names": [f"coarse_{i}".encode() for i in range(20)]}, py2=True)
  return d


def write_imagenet16(root, x_train, y_train, x_val, y_val, layout="sub"):
  """Writes the ImageNet16 pickles; labels 1-based over 1000 classes.

  layout: "sub" (Imagenet16_train/, Imagenet16_val/), "flat" (all files in root) or "nb201" (all
  files in root/ImageNet16, where NAS-Bench-201 keeps them).
  """
  train_dir = {"sub": root / "Imagenet16_train", "flat": root, "nb201": root / "ImageNet16"}[layout]
  val_dir = {"sub": root / "Imagenet16_val", "flat": root, "nb201": root / "ImageNet16"}[layout]
  train_dir.mkdir(parents=True, exist_ok=True)
  val_dir.mkdir(parents=True, exist_ok=True)
  mean = _rows(x_train).mean(axis=0)  # float64 (768,), as the original scripts stored
  for i, idx in enumerate(np.array_split(np.arange(len(x_train)), 10), 1):
    _dump(train_dir / f"train_data_batch_{i}",
          {"data": _rows(x_train[idx]), "labels": [int(v) for v in y_train[idx]], "mean": mean},
          py2=False)
  _dump(val_dir / "val_data", {"data": _rows(x_val), "labels": [int(v) for v in y_val]}, py2=False)
  return train_dir, val_dir


# ---------------------------------------------------------------------------------------------
# Fixtures.

@pytest.fixture(scope="module")
def c10():
  return data.load_bundled("cifar10")


@pytest.fixture(scope="module")
def c100():
  return data.load_bundled("cifar100")


@pytest.fixture(scope="module")
def img16(c10):
  """(64, 16, 16, 3) uint8: real images at ImageNet16 size (2x subsampled CIFAR-10)."""
  return np.ascontiguousarray(c10[0][:64, ::2, ::2])


@pytest.fixture(scope="module")
def in16_labels():
  """30 train and 6 val 1-based labels, the 120-class boundary on both sides."""
  rng = np.random.default_rng(0)
  train = np.concatenate([[1, 120, 121, 1000, 60, 119, 500, 2], rng.integers(1, 1001, 22)])
  val = np.array([1, 121, 120, 999, 7, 300])
  return train, val


@pytest.fixture
def c10_root(tmp_path, c10):
  x, y = c10
  write_cifar10(tmp_path, x[:20], y[:20], x[20:26], y[20:26])
  return tmp_path


# ---------------------------------------------------------------------------------------------
# Constants.

def test_constants_match_method():
  assert data.DATASETS == ("cifar10", "cifar100", IN16)
  assert data.NUM_CLASSES == {"cifar10": 10, "cifar100": 100, IN16: 120}
  assert data.IMAGE_SIZE == {"cifar10": 32, "cifar100": 32, IN16: 16}
  assert data.PAD == {"cifar10": 4, "cifar100": 4, IN16: 2}
  method = {  # METHOD 3.1, in 0..255 units
      "cifar10": ((125.3, 123.0, 113.9), (63.0, 62.1, 66.7)),
      "cifar100": ((129.3, 124.1, 112.4), (68.2, 65.4, 70.4)),
      IN16: ((122.68, 116.66, 104.01), (63.22, 61.26, 65.09)),
  }
  for name, (mean, std) in method.items():
    np.testing.assert_allclose(np.array(data.MEAN[name]) * 255, mean, rtol=1e-12)
    np.testing.assert_allclose(np.array(data.STD[name]) * 255, std, rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# Loaders on the official formats.

def test_cifar10_fixture_is_a_python2_pickle(c10_root):
  raw = (c10_root / "cifar-10-batches-py" / "data_batch_1").read_bytes()
  assert raw[:2] == b"\x80\x02"
  ops = {op.name for op, _, _ in pickletools.genops(raw)}
  assert "SHORT_BINSTRING" in ops and "BINSTRING" in ops
  assert not ops & {"BINUNICODE", "SHORT_BINUNICODE", "BINBYTES", "SHORT_BINBYTES"}
  assert b"cnumpy.core.multiarray\n_reconstruct\n" in raw
  with pytest.raises(UnicodeDecodeError):  # what plain pickle.load does on the real files
    pickle.loads(raw)
  d = pickle.loads(raw, encoding="bytes")
  assert list(d) == [b"batch_label", b"labels", b"data", b"filenames"]
  assert d[b"data"].dtype == np.uint8 and d[b"data"].shape == (4, 3072)


@pytest.mark.parametrize("inner", [False, True], ids=["parent", "batches_dir"])
def test_cifar10_round_trip(c10_root, c10, inner):
  x, y = c10
  root = c10_root / "cifar-10-batches-py" if inner else c10_root
  xt, yt = data.load_cifar10(root)
  assert xt.dtype == np.uint8 and xt.shape == (20, 32, 32, 3)
  assert yt.dtype == np.int32
  np.testing.assert_array_equal(xt, x[:20])
  np.testing.assert_array_equal(yt, y[:20])
  xs, ys = data.load_cifar10(str(root), split="test")
  np.testing.assert_array_equal(xs, x[20:26])
  np.testing.assert_array_equal(ys, y[20:26])


def test_cifar100_round_trip(tmp_path, c100):
  x, y = c100
  write_cifar100(tmp_path, x[:12], y[:12], x[12:18], y[12:18])
  for root in (tmp_path, tmp_path / "cifar-100-python"):
    xt, yt = data.load_cifar100(root)
    np.testing.assert_array_equal(xt, x[:12])
    np.testing.assert_array_equal(yt, y[:12])
    assert yt.dtype == np.int32
  xs, ys = data.load_dataset("cifar100", tmp_path, split="test")
  np.testing.assert_array_equal(xs, x[12:18])
  np.testing.assert_array_equal(ys, y[12:18])


@pytest.mark.parametrize("layout", ["sub", "flat", "nb201"])
def test_imagenet16_round_trip_keeps_120_classes(tmp_path, img16, in16_labels, layout):
  y_train, y_val = in16_labels
  x_train, x_val = img16[:30], img16[30:36]
  write_imagenet16(tmp_path, x_train, y_train, x_val, y_val, layout)
  keep = y_train <= 120
  xt, yt = data.load_imagenet16_120(tmp_path)
  assert xt.dtype == np.uint8 and xt.shape == (keep.sum(), 16, 16, 3)
  assert yt.dtype == np.int32
  np.testing.assert_array_equal(xt, x_train[keep])
  np.testing.assert_array_equal(yt, y_train[keep] - 1)
  assert yt.min() == 0 and yt.max() == 119
  xv, yv = data.load_dataset("ImageNet16-120", tmp_path, split="val")
  np.testing.assert_array_equal(xv, x_val[y_val <= 120])
  np.testing.assert_array_equal(yv, [0, 119, 6])


def test_load_images_sources(c10_root, c10, tmp_path):
  x, y, src = data.load_images("cifar10", c10_root)
  assert src == f"dir:{c10_root}/cifar-10-batches-py (train split, 20 images)"
  np.testing.assert_array_equal(x, c10[0][:20])
  x, y, src = data.load_images("cifar10", None)
  assert src == "bundled:cifar10_test_sample.npz (2000 CIFAR-10 test images)"
  assert x.shape == (2000, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int32
  assert np.bincount(y).tolist() == [200] * 10
  x, y, src = data.load_images("cifar100", None)
  assert src == "bundled:cifar100_test_sample.npz (673 CIFAR-100 test images)"
  assert len(np.unique(y)) == 100 and y.max() == 99


def test_imagenet16_source_names_val_split(tmp_path, img16, in16_labels):
  train_dir, val_dir = write_imagenet16(tmp_path, img16[:30], in16_labels[0], img16[30:36],
                                        in16_labels[1])
  *_, src = data.load_images(IN16, tmp_path, split="test")
  assert src == f"dir:{val_dir} (val split, 3 images)"


def test_no_bundled_imagenet16():
  for call in (lambda: data.load_bundled(IN16), lambda: data.load_images(IN16, None)):
    with pytest.raises(ValueError, match="no bundled sample.*data_dir"):
      call()


def test_unknown_name_and_split(c10_root):
  with pytest.raises(ValueError, match="cifar10, cifar100, imagenet16_120"):
    data.load_dataset("mnist", c10_root)
  with pytest.raises(ValueError, match="cifar10, cifar100, imagenet16_120"):
    data.load_bundled("svhn")
  with pytest.raises(ValueError, match="cifar10, cifar100, imagenet16_120"):
    data.normalize(np.zeros((1, 2, 2, 3), np.uint8), "mnist")
  with pytest.raises(ValueError, match="unknown split 'valid'.*train, test"):
    data.load_cifar10(c10_root, split="valid")


# ---------------------------------------------------------------------------------------------
# Errors.

def test_missing_directory_names_path_and_layout(tmp_path):
  missing = tmp_path / "nowhere"
  with pytest.raises(FileNotFoundError) as e:
    data.load_cifar10(missing)
  msg = str(e.value)
  assert str(missing) in msg and "does not exist" in msg
  for f in ["cifar-10-batches-py", "data_batch_1", "data_batch_5", "test_batch"]:
    assert f in msg
  # No silent fallback to the bundled sample.
  with pytest.raises(FileNotFoundError, match="nowhere"):
    data.load_images("cifar10", missing)
  with pytest.raises(FileNotFoundError, match="cifar-100-python.*train, test"):
    data.load_cifar100(missing)
  with pytest.raises(FileNotFoundError, match="Imagenet16_train/train_data_batch_1"):
    data.load_imagenet16_120(missing)


def test_empty_directory_and_file_as_root(tmp_path):
  with pytest.raises(FileNotFoundError) as e:
    data.load_cifar10(tmp_path)
  msg = str(e.value)
  assert f"searched {tmp_path}/cifar-10-batches-py/, {tmp_path}/." in msg
  assert "data_batch_1, data_batch_2, data_batch_3, data_batch_4, data_batch_5 found" in msg
  archive = tmp_path / "cifar-10-python.tar.gz"
  archive.write_bytes(b"\x1f\x8b")
  with pytest.raises(FileNotFoundError, match="is a file, not a directory"):
    data.load_cifar10(archive)
  with pytest.raises(ValueError, match="data_dir is ''"):
    data.load_images("cifar10", "")


def test_missing_file_names_it(c10_root):
  (c10_root / "cifar-10-batches-py" / "data_batch_3").unlink()
  with pytest.raises(FileNotFoundError) as e:
    data.load_cifar10(c10_root)
  msg = str(e.value)
  assert f"{c10_root}/cifar-10-batches-py/ lacks data_batch_3." in msg
  assert "test_batch" in msg  # the expected layout is listed
  data.load_cifar10(c10_root, split="test")  # the other split is complete


def test_missing_imagenet16_val(tmp_path, img16, in16_labels):
  train_dir, val_dir = write_imagenet16(tmp_path, img16[:30], in16_labels[0], img16[30:36],
                                        in16_labels[1])
  (val_dir / "val_data").unlink()
  data.load_imagenet16_120(tmp_path)
  with pytest.raises(FileNotFoundError, match="none of val_data found.*Imagenet16_val/val_data"):
    data.load_imagenet16_120(tmp_path, split="val")


class _Mkdir:
  """Unpickling this would create a directory: the reader must refuse to call os.mkdir."""

  def __init__(self, path):
    self.path = path

  def __reduce__(self):
    return os.mkdir, (self.path,)


def _good_batch(c10):
  x, y = c10
  return _cifar10_batch("training batch 2 of 5", x[:4], y[:4], 0)


_CORRUPT = {
    "not_pickle": (lambda p, c: p.write_bytes(b"PK\x03\x04 not a pickle"), "not a dataset batch file"),
    "truncated": (lambda p, c: p.write_bytes(p.read_bytes()[:500]), "not a dataset batch file"),
    "not_dict": (lambda p, c: _dump(p, [1, 2, 3], py2=True), "expected a pickled dict, found list"),
    "no_data_key": (lambda p, c: _dump(p, {k: v for k, v in _good_batch(c).items()
                                           if k != b"data"}, py2=True), r"missing key\(s\) 'data'"),
    "short_rows": (lambda p, c: _dump(p, {**_good_batch(c), b"data": _rows(c[0][:4])[:, :-1]},
                                      py2=True), r"shape \(n, 3072\).*\(4, 3071\)"),
    "float_data": (lambda p, c: _dump(p, {**_good_batch(c),
                                          b"data": _rows(c[0][:4]).astype(np.float32)}, py2=True),
                   "must be a uint8 array"),
    "label_count": (lambda p, c: _dump(p, {**_good_batch(c), b"labels": [1, 2, 3]}, py2=True),
                    "3 labels for 4 images"),
    "label_range": (lambda p, c: _dump(p, {**_good_batch(c), b"labels": [0, 1, 10, 2]}, py2=True),
                    r"must lie in \[0, 9\]"),
    "code": (lambda p, c: p.write_bytes(pickle.dumps(_Mkdir(str(p) + ".pwned"), protocol=2)),
             "refuses global .*mkdir"),
}


@pytest.mark.parametrize("case", list(_CORRUPT))
def test_corrupt_file_names_it(c10_root, c10, case):
  corrupt, expected = _CORRUPT[case]
  path = c10_root / "cifar-10-batches-py" / "data_batch_2"
  corrupt(path, c10)
  with pytest.raises(ValueError, match=expected) as e:
    data.load_cifar10(c10_root)
  assert str(e.value).startswith(f"{path}: ")
  assert not os.path.exists(str(path) + ".pwned")


# ---------------------------------------------------------------------------------------------
# Normalisation.

def test_normalize_formula_and_dtype(c10):
  x = c10[0][:4]
  for name in data.DATASETS:
    z = data.normalize(x, name)
    assert z.dtype == jnp.float32 and z.shape == x.shape
    want = (x / 255.0 - np.array(data.MEAN[name])) / np.array(data.STD[name])
    np.testing.assert_allclose(np.asarray(z), want, atol=2e-6)
  # A pixel at the dataset mean maps to ~0 (to within the 0..255 rounding).
  at_mean = np.round(np.array(data.MEAN["cifar10"]) * 255).astype(np.uint8)
  z = np.asarray(data.normalize(at_mean.reshape(1, 1, 1, 3), "cifar10"))
  assert np.all(np.abs(z) <= 0.5 / 255 / np.array(data.STD["cifar10"]) + 1e-6)
  with pytest.raises(TypeError, match="uint8"):
    data.normalize(x.astype(np.float32) / 255, "cifar10")


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_normalized_bundled_statistics(name):
  x, _ = data.load_bundled(name)
  z = np.asarray(data.normalize(x, name), np.float64)
  mean, std = z.mean(axis=(0, 1, 2)), z.std(axis=(0, 1, 2))
  assert np.all(np.abs(mean) < 0.15), mean
  assert np.all((std > 0.9) & (std < 1.1)), std


# ---------------------------------------------------------------------------------------------
# Augmentation.

def _augmentations(img, pad):
  """Every crop (with `pad` zero padding) and flip of one (h, w, 3) image, and their parameters."""
  h, w, _ = img.shape
  padded = np.pad(img, ((pad, pad), (pad, pad), (0, 0)))
  outs, params = [], []
  for dy in range(2 * pad + 1):
    for dx in range(2 * pad + 1):
      crop = padded[dy:dy + h, dx:dx + w]
      outs += [crop, crop[:, ::-1]]
      params += [(dy, dx, False), (dy, dx, True)]
  return np.stack(outs), params


def _which_augmentation(out, img, pad):
  cands, params = _augmentations(img, pad)
  hits = np.flatnonzero((cands == out).all(axis=(1, 2, 3)))
  return params[hits[0]] if len(hits) else None


def test_augment_is_crop_then_flip(img16):
  x = np.concatenate([img16] * 4)  # (256, 16, 16, 3)
  out = np.asarray(data.augment(jax.random.key(0), x, IN16))
  assert out.dtype == np.uint8 and out.shape == x.shape
  params = [_which_augmentation(o, xi, 2) for o, xi in zip(out, x)]
  assert all(p is not None for p in params)
  assert {(dy, dx) for dy, dx, _ in params} == {(i, j) for i in range(5) for j in range(5)}
  assert 0.35 < np.mean([f for *_, f in params]) < 0.65
  # Identity crop + flip is the mirror image; identity crop without flip is the image itself.
  flipped = [i for i, p in enumerate(params) if p == (2, 2, True)]
  kept = [i for i, p in enumerate(params) if p == (2, 2, False)]
  assert flipped and kept
  np.testing.assert_array_equal(out[flipped[0]], x[flipped[0]][:, ::-1])
  np.testing.assert_array_equal(out[kept[0]], x[kept[0]])
  # Shifted crops bring in zero padding.
  assert any((out[i] == 0).all(axis=-1).any() and not (x[i] == 0).all(axis=-1).any()
             for i, p in enumerate(params) if p[:2] != (2, 2))


def test_augment_uses_dataset_pad(c10):
  x = c10[0][:48]
  out = np.asarray(data.augment(jax.random.key(1), x, "cifar10"))
  params = [_which_augmentation(o, xi, 4) for o, xi in zip(out, x)]
  assert all(p is not None for p in params)
  # Offsets beyond ImageNet16's +-2 show that CIFAR's 4-pixel padding is in use.
  assert any(abs(dy - 4) > 2 or abs(dx - 4) > 2 for dy, dx, _ in params)


def test_augment_deterministic_per_key(img16):
  a = np.asarray(data.augment(jax.random.key(3), img16, IN16))
  b = np.asarray(data.augment(jax.random.key(3), img16, IN16))
  c = np.asarray(data.augment(jax.random.key(4), img16, IN16))
  np.testing.assert_array_equal(a, b)
  assert (a != c).any()
  with pytest.raises(TypeError, match="uint8"):
    data.augment(jax.random.key(3), img16.astype(np.float32), IN16)


# ---------------------------------------------------------------------------------------------
# Batches.

def _denormalize(z, name):
  u = (np.asarray(z, np.float64) * np.array(data.STD[name]) + np.array(data.MEAN[name])) * 255
  assert np.abs(u - np.round(u)).max() < 2e-3
  return np.round(u).astype(np.uint8)


def _source_images(batch, images, pad):
  """Index of the image each batch element is an augmentation of."""
  found = []
  for b in batch:
    hits = [j for j, im in enumerate(images) if _which_augmentation(b, im, pad) is not None]
    assert len(hits) == 1
    found.append(hits[0])
  return found


def test_sample_batch_without_replacement(img16):
  images = jnp.asarray(img16[:8])
  z = data.sample_batch(jax.random.key(0), images, 8, IN16)
  assert z.dtype == jnp.float32 and z.shape == (8, 16, 16, 3)
  src = _source_images(_denormalize(z, IN16), img16[:8], 2)
  assert sorted(src) == list(range(8))
  np.testing.assert_array_equal(z, data.sample_batch(jax.random.key(0), images, 8, IN16))
  assert (np.asarray(z) != np.asarray(data.sample_batch(jax.random.key(1), images, 8, IN16))).any()


def test_sample_batch_larger_than_dataset_spreads_images(img16):
  z = data.sample_batch(jax.random.key(2), img16[:8], 20, IN16)
  assert z.shape == (20, 16, 16, 3)
  counts = np.bincount(_source_images(_denormalize(z, IN16), img16[:8], 2), minlength=8)
  assert set(counts.tolist()) <= {2, 3} and counts.sum() == 20


def test_region_inputs_are_normalised_channel_patches(c10):
  images = c10[0][:6]
  z = np.asarray(data.region_inputs(jax.random.key(0), images, "cifar10"))  # 1000 3x3 patches
  assert z.dtype == np.float32 and z.shape == (1000, 3, 3, 1)
  mean, std = np.array(data.MEAN["cifar10"]), np.array(data.STD["cifar10"])
  # Every 3x3 patch of every channel of every image, normalised with its channel's statistics.
  win = np.lib.stride_tricks.sliding_window_view(images, (3, 3), axis=(1, 2))  # (6,30,30,3,3,3)
  cands = (win / 255.0 - mean[:, None, None]) / std[:, None, None]
  meta = np.stack(np.meshgrid(np.arange(6), np.arange(30), np.arange(30), np.arange(3),
                              indexing="ij"), -1).reshape(-1, 4)
  cands = cands.reshape(-1, 9).astype(np.float32)
  best, err = [], []
  for sample in z.reshape(-1, 9):
    d = np.abs(cands - sample).max(axis=-1)
    best.append(d.argmin())
    err.append(d[best[-1]])
  assert max(err) < 1e-5
  img, ch = meta[best, 0], meta[best, 3]
  assert set(ch.tolist()) == {0, 1, 2}
  assert set(np.bincount(img, minlength=6).tolist()) <= {166, 167}  # 1000 over 6 images, spread


def test_region_inputs_rejects_large_crop(c10):
  with pytest.raises(ValueError, match="crop"):
    data.region_inputs(jax.random.key(5), c10[0][:2, :2, :2], "cifar10")
  with pytest.raises(TypeError, match="uint8"):
    data.region_inputs(jax.random.key(5), c10[0][:2].astype(np.float32), "cifar10")


def test_functions_compose_under_outer_jit(img16, c10):
  @jax.jit
  def step(key, images16, images32):
    k1, k2 = jax.random.split(key)
    return (data.sample_batch(k1, images16, 8, IN16), data.region_inputs(k2, images32, "cifar10"),
            data.augment(k1, images16, IN16), data.normalize(images16, IN16))

  key = jax.random.key(7)
  batch, regions, aug, norm = step(key, jnp.asarray(img16[:8]), jnp.asarray(c10[0][:6]))
  k1, k2 = jax.random.split(key)
  np.testing.assert_array_equal(batch, data.sample_batch(k1, img16[:8], 8, IN16))
  np.testing.assert_array_equal(regions, data.region_inputs(k2, c10[0][:6], "cifar10"))
  assert aug.dtype == jnp.uint8 and norm.dtype == jnp.float32
  # Raw uint32 keys (jax.random.PRNGKey) work too.
  out = data.augment(jax.random.PRNGKey(0), img16[:8], IN16)
  assert out.shape == (8, 16, 16, 3) and out.dtype == jnp.uint8
