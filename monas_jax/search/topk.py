"""How well a score ranks the top of a sample of cells (pure numpy).

Global Kendall tau says little about the few cells a search must tell apart; these metrics look
at the top. ``score`` is higher-is-better, ``acc`` the benchmark accuracy of the same cells.

- ``precision_at``: share of the score's top k that are in the true top k (k = fraction * n).
- ``tau_in_true_top``: Kendall tau over the cells in the true top fraction only.
- ``best_of_pools``: accuracy of the best-scored cell of random pools (what a search over a pool
  of that size would return), mean and std over many pools; a ``score_fn`` recomposes the score
  inside every pool (a rank composition depends on the pool).
- ``ndcg``: normalised discounted cumulative gain of the score's order (definition below).
"""
from __future__ import annotations

from typing import Callable, Optional

import numpy as np
from scipy import stats


def _top(values: np.ndarray, k: int) -> np.ndarray:
  """Indices of the k largest values (ties: lower index first, so results are deterministic)."""
  return np.lexsort((np.arange(len(values)), -np.asarray(values, np.float64)))[:k]


def top_count(n: int, fraction: float) -> int:
  """k of a top fraction of n cells: round(fraction * n), at least 1."""
  return max(1, int(round(fraction * n)))


def precision_at(score: np.ndarray, acc: np.ndarray, fraction: float) -> float:
  """|top_k(score) & top_k(acc)| / k with k = top_count(n, fraction)."""
  k = top_count(len(acc), fraction)
  return len(set(_top(score, k).tolist()) & set(_top(acc, k).tolist())) / k


def tau_in_true_top(score: np.ndarray, acc: np.ndarray, fraction: float) -> float:
  """Kendall tau (b) of score and accuracy over the cells in the true top fraction."""
  idx = _top(acc, top_count(len(acc), fraction))
  if len(idx) < 3:
    return float("nan")
  return float(stats.kendalltau(np.asarray(score)[idx], np.asarray(acc)[idx])[0])


def best_of_pools(acc: np.ndarray, pool_size: int, num_pools: int = 1000, seed: int = 0,
                  score: Optional[np.ndarray] = None,
                  score_fn: Optional[Callable[[np.ndarray], np.ndarray]] = None
                  ) -> tuple[float, float]:
  """(mean, std) over ``num_pools`` random pools of ``pool_size`` cells (without replacement)
  of the accuracy of each pool's best-scored cell.

  Give ``score`` (n,) for a per-cell score, or ``score_fn(indices (p,)) -> (p,) scores`` for a
  score composed inside the pool (ranks are pool-relative). The pools are the same for every
  score given the same seed, n and pool size.
  """
  acc = np.asarray(acc, np.float64)
  n = len(acc)
  if pool_size > n:
    raise ValueError(f"pool_size {pool_size} exceeds the {n} scored cells")
  rng = np.random.default_rng(seed)
  best = np.empty(num_pools)
  for i in range(num_pools):
    pool = rng.choice(n, pool_size, replace=False)
    s = score_fn(pool) if score_fn is not None else np.asarray(score)[pool]
    best[i] = acc[pool[_top(s, 1)[0]]]
  return float(best.mean()), float(best.std())


def ndcg(score: np.ndarray, acc: np.ndarray, k: Optional[int] = None) -> float:
  """nDCG@k of the score's order with the accuracy as relevance (``k`` None: all cells).

  DCG = sum_{i<k} rel(order[i]) / log2(i + 2) with rel = accuracy (%) as is, divided by the
  DCG of the order by true accuracy (sklearn's ``ndcg_score`` on one query, ties in the score
  broken by index rather than averaged).
  """
  acc = np.asarray(acc, np.float64)
  k = len(acc) if k is None else min(int(k), len(acc))
  disc = 1.0 / np.log2(np.arange(k) + 2.0)
  dcg = float(np.sum(acc[_top(score, k)] * disc))
  ideal = float(np.sum(np.sort(acc)[::-1][:k] * disc))
  return dcg / ideal if ideal > 0 else float("nan")


FRACTIONS = (0.01, 0.05, 0.10)
POOL_SIZES = (64, 256)


def top_end(acc: np.ndarray, score: Optional[np.ndarray] = None,
            score_fn: Optional[Callable[[np.ndarray], np.ndarray]] = None,
            num_pools: int = 1000, seed: int = 0) -> dict[str, float]:
  """Every top-end metric of one score against one accuracy column, as a flat dict:
  ``precision_top{1,5,10}pct``, ``tau_true_top10pct``, ``best_of_{64,256}_mean/_std``,
  ``best_scored_acc`` (the best-scored cell of the whole sample) and ``ndcg_top{1,5,10}pct``."""
  acc = np.asarray(acc, np.float64)
  full = score if score is not None else score_fn(np.arange(len(acc)))
  out = {}
  for f in FRACTIONS:
    out[f"precision_top{round(f * 100)}pct"] = precision_at(full, acc, f)
  out["tau_true_top10pct"] = tau_in_true_top(full, acc, 0.10)
  for p in POOL_SIZES:
    if p <= len(acc):
      m, s = best_of_pools(acc, p, num_pools, seed, score=score, score_fn=score_fn)
      out[f"best_of_{p}_mean"], out[f"best_of_{p}_std"] = m, s
  out["best_scored_acc"] = float(acc[_top(full, 1)[0]])
  for f in FRACTIONS:
    out[f"ndcg_top{round(f * 100)}pct"] = ndcg(full, acc, top_count(len(acc), f))
  return out
