r"""How the default ensemble was chosen: on half of the 1,000 committed cells, reported on the other.

  python benchmarks/choose_ensemble.py [--records=benchmarks/results/score-c10-zc] \
      [--what=subsets,weights] [--pools=200]

Reads the committed ``score_space`` records (no network is run). The cells are the sample of
``experiments.score_space`` (1,000 cells, seed 0); the first 500 choose, the other 500 report.

- ``subsets``: every subset of expressivity, progressivity, trainability, synflow, MeCo and
  FLOPs (or of ``--candidates``, e.g. with ``meco_modules`` from records that hold it; log-rank,
  weight 1 each) ranked by the mean of its best-of-64 and best-of-256 pool
  accuracy on the choosing half, against the **CIFAR-10 valid** accuracy (never the test
  accuracy that is reported).
- ``weights``: the default's four indicators with every weight in {0.5, 1, 2}, ranked the same
  way.
- ``rerank``: two stages, for an indicator too costly to run on every cell a search scores: the
  default composed inside each pool keeps its top k (k in 8, 16, 32), and the default plus one
  candidate outside the default, recomposed inside those k, picks. Ranked the same way.
- ``rules``: the default's indicators (weight 1 each) aggregated by other rules inside each
  pool: the two of ``compose`` (log-rank, mean rank), the median and the minimum of the
  indicators' ranks (ties by log-rank), the mean z-score of the raw values (magnitudes instead
  of ranks), and log-rank averaged over 32 random 80 % subsamples of the pool (the pick's
  stability under the pool). Ranked the same way.

For the ten best of each and the current default it prints the reporting half's best-of-64 /
best-of-256 test accuracy on all three datasets (pools are recomposed inside, as a search
ranks). Takes about a minute on 2 cores.
"""
import argparse
import glob
import itertools
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from experiments.score_space import condition_numbers, read_records, sample_cells  # noqa: E402
from monas_jax import benchmark, config as config_lib  # noqa: E402
from monas_jax.search import compose, topk  # noqa: E402

DATASETS = ("cifar10", "cifar100", "imagenet16_120")
CANDIDATES = ("expressivity", "progressivity", "trainability", "synflow", "meco", "flops")


def read_values(path: str) -> dict[str, dict[int, float]]:
  """proxy name -> {NAS-Bench-201 index: value} from every zc.*.jsonl under ``path``, and the
  MONAS indicators where ``score_space`` also wrote NTK records (``records.*.jsonl``): ``ntk``
  = minus K_i (i = the config's ``ntk.cond_index``, so that higher is better) and ``regions``."""
  vals: dict[str, dict[int, float]] = {}
  i_cond = config_lib.make_config("cifar10").ntk.cond_index
  for f in sorted(glob.glob(os.path.join(path, "records.*.jsonl"))):
    for i, r in read_records(f).items():
      k = condition_numbers(np.asarray([r["eigenvalues"]]), i_cond)[0, i_cond]
      vals.setdefault("ntk", {})[i] = -float(k)
      vals.setdefault("regions", {})[i] = float(r["R"])
  for f in sorted(glob.glob(os.path.join(path, "zc.*.jsonl"))):  # one file per proxy group
    for i, r in read_records(f).items():
      for k, v in r.items():
        if k not in ("nb201_index", "arch_str", "seconds"):
          vals.setdefault(k, {})[i] = v
  return vals


def cell_values(path: str, cells, names, table) -> dict[str, np.ndarray]:
  """name -> (len(cells),) values of each of ``names`` for the NAS-Bench-201 indices ``cells``:
  the committed records under ``path``, and FLOPs (CIFAR-10, M) from the benchmark ``table``."""
  vals = read_values(path)
  out = {n: np.array([vals[n][int(i)] for i in cells]) for n in names if n != "flops"}
  if "flops" in names:
    out["flops"] = table.columns["flops_c10_M"][cells]
  return out


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--records", default=os.path.join(ROOT, "benchmarks/results/score-c10-zc"))
  ap.add_argument("--what", default="subsets,weights", help="subsets, weights, rerank, rules")
  ap.add_argument("--pools", type=int, default=200)
  ap.add_argument("--candidates", default=",".join(CANDIDATES),
                  help="indicators the subsets are drawn from (meco_modules, vkdnw, ntk, regions: "
                       "records that hold them)")
  a = ap.parse_args()
  names = tuple(a.candidates.split(","))
  t = benchmark.load_table()
  cells = sample_cells(1000, 0)
  e = config_lib.make_config("cifar10").ensemble
  # The candidates, and the default's indicators (the reference line) where they are not among them.
  values = cell_values(a.records, cells, tuple(dict.fromkeys(names + tuple(e.indicators))), t)
  valid = t.columns["cifar10_valid_valid_acc"][cells]
  test = {ds: benchmark.test_accuracy(ds)[cells] for ds in DATASETS}
  choose, report = np.arange(500), np.arange(500, 1000)

  def composed(w, idx, rule="log_rank"):
    return compose.compose({n: values[n][idx] for n in w}, {n: True for n in w}, w, rule)

  def pools(w, half, acc):
    if "rule" in w:  # another aggregation of the same indicators
      rule, w = w["rule"], {n: x for n, x in w.items() if n != "rule"}
      fn = lambda p: aggregated(rule, w, half[p])
    elif "rerank_k" in w:  # two stages: the default's top k, then w recomposed inside them
      k, w = w["rerank_k"], {n: x for n, x in w.items() if n != "rerank_k"}

      def fn(p):
        top = np.argsort(-composed(default, half[p]))[:k]
        out = np.full(len(p), -np.inf)
        out[top] = composed(w, half[p][top])
        return out
    else:
      fn = lambda p: composed(w, half[p])
    return [acc[half][topk.pool_picks(len(half), s, a.pools, 0, score_fn=fn)].mean()
            for s in (64, 256)]

  def aggregated(rule, w, idx):
    """The score of the cells ``idx`` by ``rule`` over the indicators of ``w``."""
    if rule in compose.RULES:
      return composed(w, idx, rule)
    if rule == "bootstrap":
      # Mean over subsamples of each cell's composed-rank fraction where it was drawn.
      rng = np.random.default_rng(len(idx))
      total, drawn = np.zeros(len(idx)), np.zeros(len(idx))
      for _ in range(32):
        sub = rng.choice(len(idx), int(0.8 * len(idx)), replace=False)
        total[sub] += compose.ranks(composed(w, idx[sub]), True) / len(sub)
        drawn[sub] += 1
      return np.where(drawn > 0, total / np.maximum(drawn, 1), -np.inf)
    vals = [values[n][idx] for n in w]
    if rule == "zscore":  # a non-finite value (T's identity paths: -inf) counts as the pool's worst
      z = 0.0
      for v in vals:
        v = np.where(np.isfinite(v), v, np.min(v[np.isfinite(v)]))
        z = z + (v - v.mean()) / (v.std() + 1e-12)
      return z
    log_rank = composed(w, idx)
    r = np.stack([compose.ranks(v, True) for v in vals])
    first = {"median_rank": np.median(r, 0), "min_rank": r.min(0)}[rule]
    # Ties (common for a median or a minimum of ranks) go to the log-rank score.
    return first * 1e6 + log_rank - log_rank.min()

  def line(w):
    rep = " ".join("%.2f/%.2f" % tuple(pools(w, report, test[ds])) for ds in DATASETS)
    return f"choose {np.mean(pools(w, choose, valid)):.3f}  report C10/C100/IN16 {rep}"

  default = dict(zip(e.indicators, e.weights))
  print(f"default {default}: {line(default)}")
  for what in a.what.split(","):
    if what == "subsets":
      tried = [{n: 1.0 for n in sub} for r in range(1, len(names) + 1)
               for sub in itertools.combinations(names, r)]
    elif what == "rerank":
      tried = [{**default, n: 1.0, "rerank_k": k} for n in names if n not in default
               for k in (8, 16, 32)]
    elif what == "rules":
      tried = [{**default, "rule": r} for r in
               ("log_rank", "mean_rank", "median_rank", "min_rank", "zscore", "bootstrap")]
    elif what == "weights":
      keys = sorted(default)
      tried = [dict(zip(keys, ws)) for ws in itertools.product((0.5, 1.0, 2.0), repeat=len(keys))]
    else:
      raise SystemExit(f"--what: {what!r} is not 'subsets', 'weights', 'rerank' or 'rules'")
    ranked = sorted(tried, key=lambda w: -np.mean(pools(w, choose, valid)))
    print(f"\n{what}: the ten best of {len(tried)} on the choosing half")
    for w in ranked[:10]:
      print(f"  {w}: {line(w)}")


if __name__ == "__main__":
  main()
