"""NAS-Bench-201 search space: operators, edges, and Arch <-> mask <-> string <-> index.

A cell has 4 nodes (0 = input, 3 = output) and 6 edges, in index order
``1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2``. Each edge carries one of 5 operators.
A *mask* is a ``(6, 5)`` array of 0/1 with ``mask[e, o] = 1`` when operator ``o`` is
active on edge ``e``; a single cell is a mask with exactly one 1 per row.
"""
from __future__ import annotations

import dataclasses
import itertools
from typing import Iterator, Sequence

import numpy as np

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
OP_INDEX = {name: i for i, name in enumerate(OPS)}
NUM_OPS = len(OPS)
# (target node, source node) per edge, in NAS-Bench-201 edge order.
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
NUM_EDGES = len(EDGES)
NUM_NODES = 4
NUM_CELLS = NUM_OPS**NUM_EDGES  # 15,625


@dataclasses.dataclass(frozen=True)
class Arch:
  """One NAS-Bench-201 cell: the operator index on each of the 6 edges."""

  ops: tuple[int, ...]

  def __post_init__(self):
    if len(self.ops) != NUM_EDGES or not all(0 <= int(o) < NUM_OPS for o in self.ops):
      raise ValueError(f"Arch needs {NUM_EDGES} operator indices in [0, {NUM_OPS}), got {self.ops!r}")
    object.__setattr__(self, "ops", tuple(int(o) for o in self.ops))

  @classmethod
  def from_string(cls, arch_str: str) -> "Arch":
    return cls(parse_arch_str(arch_str))

  @classmethod
  def from_mask(cls, mask) -> "Arch":
    return cls(mask_to_ops(mask))

  @classmethod
  def from_names(cls, names: Sequence[str]) -> "Arch":
    unknown = [n for n in names if n not in OP_INDEX]
    if unknown:
      raise ValueError(f"unknown operator {unknown[0]!r}; allowed: {', '.join(OPS)}")
    return cls(tuple(OP_INDEX[n] for n in names))

  @property
  def names(self) -> tuple[str, ...]:
    return tuple(OPS[o] for o in self.ops)

  def to_string(self) -> str:
    return ops_to_arch_str(self.ops)

  def to_mask(self) -> np.ndarray:
    return ops_to_mask(self.ops)

  def __str__(self) -> str:
    return self.to_string()


def ops_to_arch_str(ops: Sequence[int]) -> str:
  """Operator indices (6,) -> official string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|``."""
  groups = []
  for node in range(1, NUM_NODES):
    toks = [f"{OPS[ops[e]]}~{src}" for e, (dst, src) in enumerate(EDGES) if dst == node]
    groups.append("|" + "|".join(toks) + "|")
  return "+".join(groups)


def parse_arch_str(arch_str: str) -> tuple[int, ...]:
  """Official arch string -> operator indices (6,). Raises ValueError naming the bad token."""
  if not isinstance(arch_str, str):
    raise ValueError(f"arch string must be a str, got {type(arch_str).__name__}")
  s = arch_str.strip()
  groups = s.split("+")
  if len(groups) != NUM_NODES - 1:
    raise ValueError(
        f"arch string {arch_str!r} has {len(groups)} node groups separated by '+', expected "
        f"{NUM_NODES - 1}: '|op~0|+|op~0|op~1|+|op~0|op~1|op~2|'")
  ops = []
  for node, group in enumerate(groups, start=1):
    if not (group.startswith("|") and group.endswith("|")) or len(group) < 2:
      raise ValueError(f"node {node} group {group!r} in {arch_str!r} must be enclosed in '|'")
    toks = group[1:-1].split("|")
    if len(toks) != node:
      raise ValueError(
          f"node {node} group {group!r} in {arch_str!r} has {len(toks)} inputs, expected {node}")
    for src, tok in enumerate(toks):
      name, sep, idx = tok.partition("~")
      if not sep:
        raise ValueError(f"token {tok!r} in {arch_str!r} is not of the form 'op~input'")
      if name not in OP_INDEX:
        raise ValueError(
            f"unknown operator {name!r} in token {tok!r} of {arch_str!r}; allowed: {', '.join(OPS)}")
      if idx != str(src):
        raise ValueError(
            f"token {tok!r} in {arch_str!r} has input index {idx!r}; node {node} input "
            f"#{src} must read '~{src}'")
      ops.append(OP_INDEX[name])
  return tuple(ops)


def edges_into(node: int, ops: Sequence[int]) -> list[tuple[int, int, int]]:
  """(edge index, source node, operator index) of every edge into ``node`` (1-3) whose operator
  in ``ops`` (6 operator indices) is not ``none``, in edge order: the order a cell sums them."""
  return [(e, src, int(ops[e])) for e, (dst, src) in enumerate(EDGES)
          if dst == node and int(ops[e]) != OP_INDEX["none"]]


def ops_to_mask(ops: Sequence[int]) -> np.ndarray:
  """Operator indices (6,) -> one-hot mask (6, 5) float32."""
  mask = np.zeros((NUM_EDGES, NUM_OPS), np.float32)
  mask[np.arange(NUM_EDGES), np.asarray(ops)] = 1.0
  return mask


def mask_to_ops(mask) -> tuple[int, ...]:
  """One-hot mask (6, 5) -> operator indices (6,). Raises ValueError if not single-path."""
  m = np.asarray(mask)
  if m.shape != (NUM_EDGES, NUM_OPS):
    raise ValueError(f"mask must have shape ({NUM_EDGES}, {NUM_OPS}), got {m.shape}")
  active = (m > 0).sum(axis=1)
  if not np.all(active == 1):
    bad = int(np.argmax(active != 1))
    raise ValueError(f"mask is not a single cell: edge {bad} has {int(active[bad])} active operators")
  return tuple(int(i) for i in np.argmax(m > 0, axis=1))


def full_mask(exclude: Sequence[str] = ()) -> np.ndarray:
  """The supernet mask (6, 5) with every operator active except those named in `exclude`."""
  mask = np.ones((NUM_EDGES, NUM_OPS), np.float32)
  for name in exclude:
    if name not in OP_INDEX:
      raise ValueError(f"unknown operator {name!r}; allowed: {', '.join(OPS)}")
    mask[:, OP_INDEX[name]] = 0.0
  return mask


def validate_mask(mask) -> np.ndarray:
  """Checks a supernet mask: shape (6, 5), values 0/1, >= 1 active operator per edge."""
  m = np.asarray(mask, np.float32)
  if m.shape != (NUM_EDGES, NUM_OPS):
    raise ValueError(f"mask must have shape ({NUM_EDGES}, {NUM_OPS}), got {m.shape}")
  if not np.all((m == 0) | (m == 1)):
    raise ValueError("mask values must be 0 or 1")
  empty = np.flatnonzero(m.sum(axis=1) == 0)
  if empty.size:
    raise ValueError(f"edge {int(empty[0])} has no active operator")
  return m


def all_ops_lexicographic() -> Iterator[tuple[int, ...]]:
  """All 15,625 operator tuples in lexicographic order (not benchmark order; see benchmark.py)."""
  return itertools.product(range(NUM_OPS), repeat=NUM_EDGES)


def single_path_ops(mask) -> list[tuple[int, ...]]:
  """Every single-path cell contained in a supernet mask (6, 5), as operator tuples."""
  m = np.asarray(mask) > 0
  return list(itertools.product(*[np.flatnonzero(m[e]).tolist() for e in range(NUM_EDGES)]))


def to_arch(arch) -> Arch:
  """Accepts an Arch, an arch string, an operator tuple or a one-hot mask."""
  if isinstance(arch, Arch):
    return arch
  if isinstance(arch, str):
    return Arch.from_string(arch)
  a = np.asarray(arch)
  if a.shape == (NUM_EDGES, NUM_OPS):
    return Arch.from_mask(a)
  return Arch(tuple(int(x) for x in a.reshape(-1)))
