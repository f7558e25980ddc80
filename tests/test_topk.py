"""Top-end ranking metrics (monas_jax.search.topk) on small hand-checked cases."""
import numpy as np
import pytest
from scipy import stats

from monas_jax.search import topk


def test_precision_and_tau_at_the_top():
  acc = np.arange(100, dtype=float)
  assert topk.precision_at(acc, acc, 0.05) == 1.0
  assert topk.precision_at(-acc, acc, 0.10) == 0.0
  s = acc.copy()
  s[[99, 0]] = s[[0, 99]]  # the best cell scored worst: 4 of the true top 5 remain
  assert topk.precision_at(s, acc, 0.05) == pytest.approx(0.8)
  assert topk.top_count(1000, 0.01) == 10 and topk.top_count(10, 0.01) == 1
  # tau only over the true top 10: a score that orders the rest backwards does not matter.
  s = np.where(acc >= 90, acc, -acc)
  assert topk.tau_in_true_top(s, acc, 0.10) == pytest.approx(1.0)
  assert stats.kendalltau(s, acc)[0] < 0.5


def test_best_of_pools_and_recomposed_scores():
  rng = np.random.default_rng(0)
  acc = rng.normal(90, 2, 300)
  m, sd = topk.best_of_pools(acc, 300, num_pools=3, score=acc)
  assert m == pytest.approx(acc.max()) and sd == pytest.approx(0.0, abs=1e-9)  # one pool: its best
  perfect = topk.best_of_pools(acc, 64, num_pools=50, score=acc)[0]
  noisy = topk.best_of_pools(acc, 64, num_pools=50, score=acc + rng.normal(0, 5, 300))[0]
  assert perfect > noisy
  # A score function of the pool gives the same picks as the per-cell score it reads.
  a = topk.pool_picks(300, 64, 20, 1, score=-acc)
  b = topk.pool_picks(300, 64, 20, 1, score_fn=lambda p: -acc[p])
  np.testing.assert_array_equal(a, b)
  with pytest.raises(ValueError, match="exceeds"):
    topk.pool_picks(10, 64)


def test_ndcg_follows_vkdnw_definition():
  acc = np.array([94.0, 93.0, 90.0, 80.0])
  assert topk.ndcg(acc, acc) == pytest.approx(1.0)
  # By hand: gain 2^acc - 1, discount 1 / log2(rank + 1).
  order = np.array([1, 0, 2, 3])  # the score puts the second-best first
  gain = 2.0 ** acc - 1
  disc = 1 / np.log2(np.arange(4) + 2)
  want = np.sum(gain[order] * disc) / np.sum(gain * disc)
  s = np.array([3.0, 4.0, 2.0, 1.0])
  assert topk.ndcg(s, acc) == pytest.approx(want, rel=1e-12)
  # Exponential gain: misplacing the top costs far more than misplacing the bottom.
  low = np.array([4.0, 3.0, 1.0, 2.0])
  assert topk.ndcg(low, acc) > 0.99 > 0.9 > topk.ndcg(s, acc)


def test_top_end_reports_every_metric_per_dataset():
  rng = np.random.default_rng(3)
  a10 = rng.normal(90, 3, 400)
  accs = {"cifar10": a10, "cifar100": a10 - 20 + rng.normal(0, 1, 400)}
  out = topk.top_end(accs, score=a10, num_pools=20)
  assert set(out) == {"cifar10", "cifar100"}
  m = out["cifar10"]
  assert m["precision_top1pct"] == m["precision_top5pct"] == 1.0 and m["ndcg"] == 1.0
  assert m["best_scored_acc"] == a10.max() and "best_of_256_mean" in m
  assert out["cifar100"]["precision_top10pct"] < 1.0
