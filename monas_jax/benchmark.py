"""NAS-Bench-201 ground truth for all 15,625 cells, shipped with the package.

The table (``assets/nb201_groundtruth.csv.gz``, provenance in ``assets/README.md``) holds the
200-epoch test accuracies (%), the benchmark's FLOPs (M, per image) and params (M) of the C=16,
N=5 network, in NAS-Bench-201 index order.
"""
from __future__ import annotations

import csv
import dataclasses
import functools
import gzip
import importlib.resources
from typing import Any

import numpy as np

from monas_jax import space

COLUMNS = ("cifar10_test_acc", "cifar100_test_acc", "imagenet16_120_test_acc",
           "cifar10_valid_valid_acc", "flops_c10_M", "flops_in16_M", "params_c10_M",
           "params_c100_M", "params_in16_M")
ACC_COLUMN = {"cifar10": "cifar10_test_acc", "cifar100": "cifar100_test_acc",
              "imagenet16_120": "imagenet16_120_test_acc"}


@dataclasses.dataclass(frozen=True)
class Table:
  """Column arrays (15625,) in benchmark index order, plus the arch-string index."""

  arch_str: tuple[str, ...]
  ops: np.ndarray  # (15625, 6) int32 operator indices
  columns: dict[str, np.ndarray]
  index_of: dict[str, int]

  def __len__(self) -> int:
    return len(self.arch_str)


@functools.lru_cache(maxsize=1)
def load_table() -> Table:
  """Reads the bundled ground-truth table once per process."""
  ref = importlib.resources.files("monas_jax") / "assets" / "nb201_groundtruth.csv.gz"
  with ref.open("rb") as raw, gzip.open(raw, "rt", newline="") as f:
    rows = list(csv.DictReader(f))
  if len(rows) != space.NUM_CELLS:
    raise RuntimeError(f"bundled NAS-Bench-201 table has {len(rows)} rows, expected 15625")
  arch_str = tuple(r["arch_str"] for r in rows)
  if [int(r["nb201_index"]) for r in rows] != list(range(len(rows))):
    raise RuntimeError("bundled NAS-Bench-201 table is not in index order")
  columns = {c: np.array([float(r[c]) for r in rows]) for c in COLUMNS}
  ops = np.array([space.parse_arch_str(s) for s in arch_str], np.int32)
  return Table(arch_str, ops, columns, {s: i for i, s in enumerate(arch_str)})


def index_of(arch) -> int:
  """NAS-Bench-201 index (0..15624) of a cell given as Arch, string, ops tuple or one-hot mask."""
  a = space.to_arch(arch)
  return load_table().index_of[a.to_string()]


def arch_at(index: int) -> space.Arch:
  """The cell at a NAS-Bench-201 index."""
  if not 0 <= int(index) < space.NUM_CELLS:
    raise ValueError(f"NAS-Bench-201 index must be in [0, {space.NUM_CELLS}), got {index}")
  return space.Arch(tuple(load_table().ops[int(index)]))


def all_archs() -> list[space.Arch]:
  """All 15,625 cells in benchmark index order."""
  return [space.Arch(tuple(o)) for o in load_table().ops]


def lookup(arch) -> dict[str, Any]:
  """Ground truth of one cell: ``nb201_index``, ``arch_str`` and every column (acc in %, M)."""
  a = space.to_arch(arch)
  t = load_table()
  s = a.to_string()
  if s not in t.index_of:  # every valid cell is in the table; this guards a corrupt asset
    raise KeyError(f"arch {s!r} not found in the NAS-Bench-201 table")
  i = t.index_of[s]
  out: dict[str, Any] = {"nb201_index": i, "arch_str": s}
  out.update({c: float(t.columns[c][i]) for c in COLUMNS})
  return out


def test_accuracy(dataset: str) -> np.ndarray:
  """200-epoch test accuracy (%) of all cells for a dataset, shape (15625,), index order."""
  if dataset not in ACC_COLUMN:
    raise ValueError(f"unknown dataset {dataset!r}; allowed: {', '.join(ACC_COLUMN)}")
  return load_table().columns[ACC_COLUMN[dataset]]
