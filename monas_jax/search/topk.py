"""How well a score ranks the top of a sample of cells (pure numpy).

Global Kendall tau says little about the few cells a search must tell apart; these metrics look
at the top. ``score`` is higher-is-better, ``acc`` the benchmark accuracy of the same cells.

- ``precision_at``: share of the score's top k that are in the true top k (k = fraction * n).
- ``tau_in_true_top``: Kendall tau over the cells in the true top fraction only.
- ``best_of_pools``: accuracy of the best-scored cell of random pools (what a search over a pool
  of that size would return), mean and std over many pools; a ``score_fn`` recomposes the score
  inside every pool (a rank composition depends on the pool).
- ``ndcg``: normalised discounted cumulative gain of the score's order, as VKDNW (CVPR 2025,
  ``ondratybl/VKDNW`` ``tss_utils.get_metrics``) computes it: sklearn's ``ndcg_score`` with
  gain 2^acc - 1 (accuracy in %) at k = 1000, so the few best cells dominate it.
"""
from __future__ import annotations

from typing import Callable, Mapping, Optional

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


def pool_picks(n: int, pool_size: int, num_pools: int = 1000, seed: int = 0,
               score: Optional[np.ndarray] = None,
               score_fn: Optional[Callable[[np.ndarray], np.ndarray]] = None) -> np.ndarray:
  """(num_pools,) index of the best-scored cell of each of ``num_pools`` random pools of
  ``pool_size`` of the n cells (without replacement; the same pools for every score given the
  same seed, n and size). Give ``score`` (n,) for a per-cell score, or ``score_fn(indices (p,))
  -> (p,) scores`` for a score composed inside the pool (ranks are pool-relative)."""
  if pool_size > n:
    raise ValueError(f"pool_size {pool_size} exceeds the {n} scored cells")
  rng = np.random.default_rng(seed)
  picks = np.empty(num_pools, np.int64)
  for i in range(num_pools):
    pool = rng.choice(n, pool_size, replace=False)
    s = score_fn(pool) if score_fn is not None else np.asarray(score)[pool]
    picks[i] = pool[_top(s, 1)[0]]
  return picks


def best_of_pools(acc: np.ndarray, pool_size: int, num_pools: int = 1000, seed: int = 0,
                  score: Optional[np.ndarray] = None,
                  score_fn: Optional[Callable[[np.ndarray], np.ndarray]] = None
                  ) -> tuple[float, float]:
  """(mean, std) over random pools of the accuracy of each pool's best-scored cell (what a
  search that ranks a pool of that size returns); arguments as ``pool_picks``."""
  best = np.asarray(acc, np.float64)[pool_picks(len(acc), pool_size, num_pools, seed, score,
                                                score_fn)]
  return float(best.mean()), float(best.std())


def ndcg(score: np.ndarray, acc: np.ndarray, k: Optional[int] = 1000) -> float:
  """nDCG@k of the score's order: DCG = sum_{i<k} (2^acc(order_i) - 1) / log2(i + 2), divided by
  the DCG of the order by true accuracy (acc in %; ``k`` None: every cell).

  VKDNW's definition (sklearn ``ndcg_score(2**acc - 1, score, k=1000, ignore_ties=True)``);
  ties in the score are broken by index. Their Table 1 scores all 15,625 cells; on a sample the
  value is not comparable with theirs.
  """
  acc = np.asarray(acc, np.float64)
  k = len(acc) if k is None else min(int(k), len(acc))
  disc = 1.0 / np.log2(np.arange(k) + 2.0)
  # 2^acc overflows nothing below acc = 1000; subtracting the max keeps the ratio exact enough.
  gain = np.exp2(acc - acc.max()) - np.exp2(-acc.max())
  dcg = float(np.sum(gain[_top(score, k)] * disc))
  ideal = float(np.sum(np.sort(gain)[::-1][:k] * disc))
  return dcg / ideal if ideal > 0 else float("nan")


FRACTIONS = (0.01, 0.05, 0.10)
POOL_SIZES = (64, 256)


def top_end(accs: Mapping[str, np.ndarray], score: Optional[np.ndarray] = None,
            score_fn: Optional[Callable[[np.ndarray], np.ndarray]] = None,
            num_pools: int = 1000, seed: int = 0) -> dict[str, dict[str, float]]:
  """Every top-end metric of one score against each accuracy column (name -> (n,)), as
  {name: flat dict}: ``precision_top{1,5,10}pct``, ``tau_true_top10pct``,
  ``best_of_{64,256}_mean/_std``, ``best_scored_acc`` (the best-scored cell of the whole
  sample) and ``ndcg`` (VKDNW's, k = 1000). The pools are drawn once for all columns; pool sizes
  above n are left out, and the tau is None below 3 cells in the true top 10 %."""
  n = len(next(iter(accs.values())))
  full = np.asarray(score if score is not None else score_fn(np.arange(n)), np.float64)
  picks = {p: pool_picks(n, p, num_pools, seed, score, score_fn) for p in POOL_SIZES if p <= n}
  out = {}
  for name, acc in accs.items():
    acc = np.asarray(acc, np.float64)
    m = {f"precision_top{round(f * 100)}pct": precision_at(full, acc, f) for f in FRACTIONS}
    tau = tau_in_true_top(full, acc, 0.10)
    m["tau_true_top10pct"] = None if np.isnan(tau) else tau  # None: too few cells (JSON-able)
    for p, idx in picks.items():
      m[f"best_of_{p}_mean"], m[f"best_of_{p}_std"] = float(acc[idx].mean()), float(acc[idx].std())
    m["best_scored_acc"] = float(acc[_top(full, 1)[0]])
    m["ndcg"] = ndcg(full, acc)
    out[name] = m
  return out
