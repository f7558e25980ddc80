r"""Writes an image-folder dataset from the bundled CIFAR-10 sample, as real PNG files.

  python benchmarks/make_image_folder.py --out=/tmp/c10-folder
  python benchmarks/make_image_folder.py --out=/tmp/c10-3gray48 --classes=3 --size=48 --grayscale

Layout (what ``--config=configs/folder.py --config.data_dir=OUT`` reads):
``OUT/train/<k>_<name>/<index>.png`` and ``OUT/test/<k>_<name>/<index>.png``, ``index`` the
image's position in the bundled sample (five digits), so the folder reads back in the sample's
order (the reader orders by file name). ``--split=holdout`` (default) puts a stratified fixed
``--test_fraction`` (20 %) of each class in test/ and the rest in train/ (the split
experiments.train makes of the bundled sample); ``--split=all`` writes every image to train/ and
to test/, so that a search on the folder sees exactly the sample a search without
``--config.data_dir`` sees (the consistency check of issue 22). Images are resized with Pillow
(bilinear) when ``--size`` is not 32 and converted to one channel with ``--grayscale``.
"""
from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from monas_jax import data, train  # noqa: E402


def write_image_folder(out: str, classes: int = 10, size: int = 32, grayscale: bool = False,
                       split: str = "holdout", test_fraction: float = 0.2,
                       per_class: int = 0) -> dict:
  """Writes the first ``classes`` CIFAR-10 classes of the bundled sample under ``out``.

  Args:
    out: folder to create (train/ and test/ inside).
    classes: how many classes, 2..10 (CIFAR-10's label order).
    size: image side, pixels (32 keeps the sample's exact pixels).
    grayscale: one channel (luma) instead of RGB.
    split: 'holdout' (test_fraction of each class to test/, the rest to train/) or 'all' (every
      image to both).
    test_fraction: share of each class held out with split='holdout'.
    per_class: at most this many images per class (0 = all 200).

  Returns:
    {"train": count, "test": count, "classes": [folder names]}.
  """
  if not 2 <= classes <= 10:
    raise ValueError(f"--classes={classes}: expected 2..10 (CIFAR-10 has 10)")
  if split not in ("holdout", "all"):
    raise ValueError(f"--split={split!r}: expected 'holdout' or 'all'")
  from PIL import Image
  x, y = data.load_bundled("cifar10")
  keep = np.flatnonzero(y < classes)
  if per_class:
    keep = np.concatenate([keep[y[keep] == k][:per_class] for k in range(classes)])
    keep.sort()
  x = data.fit_images(x[keep], size, 1 if grayscale else 3, "the bundled sample")
  y, index = y[keep], keep
  names = [f"{k}_{data.CIFAR10_CLASSES[k]}" for k in range(classes)]
  if split == "all":
    parts = {"train": np.arange(len(y)), "test": np.arange(len(y))}
  else:
    tr, te = train.holdout_split(y, test_fraction)
    parts = {"train": tr, "test": te}
  for part, idx in parts.items():
    for name in names:
      os.makedirs(os.path.join(out, part, name), exist_ok=True)
    for i in idx:
      img = x[i][..., 0] if grayscale else x[i]
      Image.fromarray(img).save(os.path.join(out, part, names[y[i]], f"{index[i]:05d}.png"))
  return {"train": int(len(parts["train"])), "test": int(len(parts["test"])), "classes": names}


def main():
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--out", required=True, help="folder to write (train/ and test/ inside)")
  p.add_argument("--classes", type=int, default=10, help="first N CIFAR-10 classes (2..10)")
  p.add_argument("--size", type=int, default=32, help="image side in pixels")
  p.add_argument("--grayscale", action="store_true", help="one channel instead of RGB")
  p.add_argument("--split", default="holdout", help="'holdout' or 'all' (see the docstring)")
  p.add_argument("--test_fraction", type=float, default=0.2)
  p.add_argument("--per_class", type=int, default=0, help="at most N images a class (0 = all)")
  a = p.parse_args()
  try:
    counts = write_image_folder(a.out, a.classes, a.size, a.grayscale, a.split, a.test_fraction,
                                a.per_class)
  except ValueError as e:
    sys.exit(f"error: {e}")
  print(f"wrote {counts['train']} train and {counts['test']} test PNG images of "
        f"{len(counts['classes'])} classes to {a.out}")


if __name__ == "__main__":
  main()
