"""Pure ranking helpers of the pruning search (METHOD.md section 4)."""
from __future__ import annotations

import numpy as np

# Rank direction per indicator: rank 0 goes to the candidate whose removal helps most.
#   K (NTK condition number, lower better): delta descending.
#   R (linear regions, higher better):      delta ascending.
#   F, L (cost, lower better):              delta descending.
DESCENDING = {"K": True, "R": False, "F": True, "L": True}


def relative_delta(current: np.ndarray, candidates: np.ndarray, precision: int) -> np.ndarray:
  """(X(current) - X(candidate)) / X(current), rounded to ``precision`` decimals.

  Args:
    current: (repeats,) indicator of the current supernet per repeat.
    candidates: (repeats, m) indicator of each candidate per repeat.
  Returns:
    (m,) the per-repeat rounded deltas averaged over repeats.
  """
  cur = np.asarray(current, np.float64)[:, None]
  cand = np.asarray(candidates, np.float64)
  with np.errstate(divide="ignore", invalid="ignore"):
    d = np.where(cur != 0, (cur - cand) / cur, 0.0)
  return np.round(d, precision).mean(axis=0)


def dense_rank(values: np.ndarray, descending: bool) -> np.ndarray:
  """Dense ranks from 0 (equal values share a rank; ranks are consecutive). (m,) -> (m,) int."""
  v = -np.asarray(values, np.float64) if descending else np.asarray(values, np.float64)
  uniq = np.unique(v)
  return np.searchsorted(uniq, v).astype(np.int64)


def weights(flops_weight: float, latency_weight: float) -> dict[str, float]:
  """((1-lambda-mu)/2, (1-lambda-mu)/2, lambda, mu) for (K, R, F, L)."""
  acc = (1.0 - flops_weight - latency_weight) / 2.0
  return {"K": acc, "R": acc, "F": float(flops_weight), "L": float(latency_weight)}


def scores(ranks: dict[str, np.ndarray], w: dict[str, float]) -> np.ndarray:
  """Weighted mean of the ranks (weights sum to 1). Lower score = prune first."""
  m = len(next(iter(ranks.values())))
  s = np.zeros(m)
  for name, r in ranks.items():
    s += w.get(name, 0.0) * r
  return s
