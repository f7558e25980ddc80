r"""VKDNW where the search decides: among the cells the default ensemble ranks highest.

  python benchmarks/vkdnw_top.py [--records=benchmarks/results/score-c10-zc] [--top=12] \
      [--workdir=runs/vkdnw-top] [--proxy=vkdnw --add=vkdnw_entropy]

VKDNW costs about two minutes per cell on 2 cores (benchmarks/vkdnw_cost.py), too much for the
1,000 committed cells. This scores it on the ``--top`` cells of each half of that sample (first
500 / other 500, as choose_ensemble.py splits it) by the default composed score, with the keys
``experiments.score_space`` would use (records ``zc.vkdnw.shard0-of-1.jsonl`` in ``--workdir``,
resumable), then prints, inside each half's top cells: each indicator's Kendall tau with the
test accuracy (C10 / C100 / IN16) and the accuracy of the cell it puts first, for the default's
indicators, ``vkdnw``, ``vkdnw_entropy``, the default composition and the default plus
``vkdnw_entropy`` (both recomposed inside the top cells). A diagnostic of the top, not a choice:
the 24 cells are too few to choose a composition on.

``--seed=1`` draws other weights and images (the cells stay those of the sample's seed 0).
``--halves=reporting`` scores and reports one half only (or both in another order).
A ``--workdir`` that holds every record already is only reported (nothing is computed).
``--ks=2,3,...`` adds, per half, the cell that the default and the default plus ``--add`` put
first when recomposed inside the default's top k only (the final re-rank's
``ensemble.rerank_top``), for each k up to ``--top``.
``--pools=N`` (with ``--ks``) simulates the final re-rank on N random pools of ``--pool_size``
cells of each half (the searches' final pools hold 135-163): inside each pool the default's top k
(recomposed in the pool) are recomposed with ``--add``, and the table gives the mean accuracy of
that pick per k against the default's own pick; a pool whose top k holds a cell without a record
is left out for that k (counted). Nothing is scored for it: score the top first (``--top``).
``--proxy`` scores another costly proxy (group) of ``zero_cost.proxy_fn`` the same way, e.g.
``--proxy=zico --add=zico``; ``--add`` is the member added to the default in the last row.
"""
import argparse
import os
import sys

import jax.numpy as jnp
import numpy as np
from scipy import stats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from choose_ensemble import DATASETS, cell_values  # noqa: E402
from experiments.score_space import read_proxies, sample_cells, score_proxies  # noqa: E402
from monas_jax import benchmark, config as config_lib, data  # noqa: E402
from monas_jax.proxies import zero_cost  # noqa: E402
from monas_jax.search import compose  # noqa: E402


def composed(values, weights, rule):
  """The composed score (compose.compose, each proxy's own direction) of the proxies named in
  ``weights``, from ``values`` (name -> (n,) array)."""
  return compose.compose({n: values[n] for n in weights}, zero_cost.HIGHER_IS_BETTER, weights,
                         rule)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--records", default=os.path.join(ROOT, "benchmarks/results/score-c10-zc"))
  ap.add_argument("--top", type=int, default=12)
  ap.add_argument("--workdir", default="runs/vkdnw-top")
  ap.add_argument("--proxy", default="vkdnw", help="proxy or group of zero_cost.proxy_fn")
  ap.add_argument("--add", default="vkdnw_entropy", help="member added to the default")
  ap.add_argument("--seed", type=int, default=0,
                  help="config seed of the proxies' keys (a second draw of weights and images)")
  ap.add_argument("--halves", default="choosing,reporting",
                  help="which halves to score and report, in this order")
  ap.add_argument("--ks", default="", help="comma-separated k of the re-rank table")
  ap.add_argument("--pools", type=int, default=0, help="random pools per half for --ks")
  ap.add_argument("--pool_size", type=int, default=144)
  a = ap.parse_args()
  ks = [int(k) for k in a.ks.split(",") if k]
  if any(not 1 <= k <= a.top for k in ks):
    raise SystemExit(f"--ks: every k must be between 1 and --top={a.top}, got {a.ks!r}")
  if a.pools and not (ks and 1 <= a.pool_size <= 500):
    raise SystemExit("--pools needs --ks and a --pool_size between 1 and 500")
  members = zero_cost.GROUPS.get(a.proxy, (a.proxy,))
  if a.add not in members:
    raise SystemExit(f"--add: {a.add!r} is not among {a.proxy}'s values {members}")
  c = config_lib.make_config("cifar10")
  c.seed = a.seed
  e = c.ensemble
  t = benchmark.load_table()
  cells = sample_cells(1000, 0)
  values = cell_values(a.records, cells, tuple(e.indicators), t)
  weights = dict(zip(e.indicators, e.weights))
  split = {"choosing": np.arange(500), "reporting": np.arange(500, 1000)}
  bad = [h for h in a.halves.split(",") if h not in split]
  if bad:
    raise SystemExit(f"--halves: {bad[0]!r} is not one of {', '.join(split)}")
  halves = {f"{h} half": split[h] for h in a.halves.split(",")}
  # Each half's top by the default composed inside that half (the halves stay apart).
  tops = {h: idx[np.argsort(-compose.compose({n: values[n][idx] for n in e.indicators},
                                             zero_cost.HIGHER_IS_BETTER, weights, e.rule))[:a.top]]
          for h, idx in halves.items()}
  os.makedirs(a.workdir, exist_ok=True)
  images, labels, _ = data.load_images(c.dataset, c.data_dir)
  todo = np.concatenate([cells[i] for i in tops.values()])
  score_proxies(c, todo, a.workdir, (jnp.asarray(images), jnp.asarray(labels)), print, members)
  vk = read_proxies(a.workdir, members)
  acc = {ds: benchmark.test_accuracy(ds) for ds in DATASETS}
  for half, top in tops.items():
    idx = cells[top]
    v = {n: values[n][top] for n in e.indicators}
    v.update({n: np.array([vk[n][int(i)] for i in idx]) for n in members})
    rows = dict(v)
    plus = {**weights, a.add: 1.0}
    recompose = lambda w, k=len(idx): composed({n: v[n][:k] for n in w}, w, e.rule)
    rows["default (recomposed)"] = recompose(weights)
    rows[f"default + {a.add}"] = recompose(plus)
    best = " / ".join(f"{acc[ds][idx].max():.2f}" for ds in DATASETS)
    print(f"\n{half}: the default's top {len(idx)} cells (best there C10 / C100 / IN16 {best})")
    print("| score | tau C10 / C100 / IN16 | its first cell C10 / C100 / IN16 |")
    print("| --- | --- | --- |")
    for name, s in rows.items():
      taus = " / ".join(f"{stats.kendalltau(s, acc[ds][idx])[0]:.2f}" for ds in DATASETS)
      first = " / ".join(f"{acc[ds][idx][np.argmax(s)]:.2f}" for ds in DATASETS)
      print(f"| {name} | {taus} | {first} |")
    if ks:
      # idx is in the default's order, so idx[:k] is its top k.
      print(f"\n{half}: first cell C10 / C100 / IN16 when recomposed inside the default's top k")
      print(f"| k | default | default + {a.add} |")
      print("| ---: | --- | --- |")
      for k in ks:
        firsts = [" / ".join(f"{acc[ds][idx[np.argmax(recompose(w, k))]]:.2f}" for ds in DATASETS)
                  for w in (weights, plus)]
        print(f"| {k} | {firsts[0]} | {firsts[1]} |")
  if a.pools:
    for half, idx in halves.items():
      pool_table(half, idx, cells, values, vk[a.add], weights, a.add, e.rule, ks, a.pools,
                 a.pool_size, acc)


def pool_table(half, idx, cells, values, extra, weights, add, rule, ks, pools, size, acc):
  """Prints, per k, the mean accuracy of the cell the re-rank picks in ``pools`` random pools of
  ``size`` of the half's positions ``idx`` (seeded by the half, so reruns agree), beside the
  default's own pick in the same pools."""
  rng = np.random.default_rng(int(idx[0]))
  pairs = {k: [] for k in ks}  # (re-rank's pick, default's pick) per pool
  for _ in range(pools):
    pool = rng.choice(idx, size, replace=False)
    order = pool[np.argsort(-composed({n: values[n][pool] for n in weights}, weights, rule))]
    for k in ks:
      top = cells[order[:k]]
      if all(int(i) in extra for i in top):
        v = {n: values[n][order[:k]] for n in weights}
        v[add] = np.array([extra[int(i)] for i in top])
        pairs[k].append((top[np.argmax(composed(v, {**weights, add: 1.0}, rule))], top[0]))
  print(f"\n{half}: {pools} random pools of {size} cells; mean C10 / C100 / IN16 of the pick")
  print("| k | pools with every top-k cell scored | re-rank | default's own pick |")
  print("| ---: | ---: | --- | --- |")
  for k, kept in pairs.items():
    if not kept:
      print(f"| {k} | 0 | - | - |")
      continue
    chosen = np.asarray(kept, dtype=int)
    means = [" / ".join(f"{acc[ds][chosen[:, j]].mean():.2f}" for ds in DATASETS) for j in (0, 1)]
    print(f"| {k} | {len(kept)} | {means[0]} | {means[1]} |")


if __name__ == "__main__":
  main()
