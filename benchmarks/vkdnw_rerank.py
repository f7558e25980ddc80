r"""What a final re-rank by VKDNW's Fisher entropy would pick in the searches' final pools.

  python benchmarks/vkdnw_rerank.py SWEEP_DIR [--top=3,4,5] [--workdir=runs/vkdnw-rerank]

For each ``seed*.result.json`` in SWEEP_DIR (an accuracy-only ensemble sweep), the final round's
``k`` best cells by the composed score the search recorded. VKDNW is scored on the union of
those cells with ``experiments.score_space``'s keys and records (resumable; one draw per cell,
so every seed sees the same entropy of a cell, where a re-rank inside the search would draw per
seed). Then, inside each seed's top k, the default composition plus ``vkdnw_entropy`` is
recomposed from the indicator values the search recorded (as benchmarks/vkdnw_top.py does inside
the sample's top 12) and its first cell is reported, with the mean accuracy over the seeds, next
to the search's own pick and to the default alone recomposed inside the top k (a rank
composition depends on its pool, so recomposing alone can move a pick). An offline estimate of
an opt-in re-rank, not a search: nothing in the package calls VKDNW.
"""
import argparse
import glob
import json
import os
import sys

import jax.numpy as jnp
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
from choose_ensemble import DATASETS  # noqa: E402
from experiments.score_space import read_proxies, score_proxies  # noqa: E402
from monas_jax import benchmark, config as config_lib, data  # noqa: E402
from monas_jax.proxies import zero_cost  # noqa: E402
from vkdnw_top import composed  # noqa: E402

MEMBERS = zero_cost.GROUPS["vkdnw"]


def final_pools(sweep_dir):
  """(the searches' dataset, seed -> (the search's pick, its final round, the final round's
  cells sorted best first by recorded score))."""
  out, dataset = {}, None
  for path in sorted(glob.glob(os.path.join(sweep_dir, "seed*.result.json"))):
    r = json.load(open(path))
    final = r["rounds"][-1]
    out[r["seed"]] = (r["arch_str"], final, sorted(final["cells"], key=lambda c: -c["score"]))
    dataset = r["config"]["dataset"]
  if not out:
    raise SystemExit(f"{sweep_dir}: no seed*.result.json")
  return dataset, out


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("sweep_dir")
  ap.add_argument("--top", default="3,4,5", help="sizes k of the re-ranked top, comma-separated")
  ap.add_argument("--workdir", default="runs/vkdnw-rerank")
  a = ap.parse_args()
  ks = [int(k) for k in a.top.split(",")]
  dataset, pools = final_pools(a.sweep_dir)
  c = config_lib.make_config(dataset)
  t = benchmark.load_table()
  index = {s: i for i, s in enumerate(t.arch_str)}
  todo = sorted({index[cell["arch_str"]] for _, _, cells in pools.values()
                 for cell in cells[:max(ks)]})
  os.makedirs(a.workdir, exist_ok=True)
  images, labels, _ = data.load_images(c.dataset, c.data_dir)
  score_proxies(c, todo, a.workdir, (jnp.asarray(images), jnp.asarray(labels)), print, MEMBERS)
  entropy = read_proxies(a.workdir, MEMBERS)["vkdnw_entropy"]
  acc = {ds: benchmark.test_accuracy(ds) for ds in DATASETS}
  fmt = lambda i: " / ".join(f"{acc[ds][i]:.2f}" for ds in DATASETS)
  print(f"\nVKDNW entropy of the {len(todo)} cells (cell: entropy, C10 / C100 / IN16):")
  for i in todo:
    print(f"  {i}: {entropy[i]:.4f}  {fmt(i)}")
  print("\n| k | seed picks: search -> re-rank | search mean C10 / C100 / IN16 | default "
        "recomposed in the top k | default + entropy in the top k |")
  print("| ---: | --- | --- | --- | --- |")
  for k in ks:
    picks, plain, own = [], [], []
    for seed, (arch, final, cells) in sorted(pools.items()):
      top = cells[:k]
      names = list(final["indicators"])
      weights = {**final["weights"], "vkdnw_entropy": 1.0}
      values = {n: np.array([cell[f"value_{n}"] for cell in top]) for n in names}
      values["vkdnw_entropy"] = np.array([entropy[index[cell["arch_str"]]] for cell in top])
      first = lambda w: index[top[int(np.argmax(composed(values, w, final["rule"])))]["arch_str"]]
      picks.append(first(weights))
      plain.append(first(final["weights"]))
      own.append(index[arch])
    mean = lambda cells: " / ".join(f"{np.mean(acc[ds][cells]):.2f}" for ds in DATASETS)
    moves = ", ".join(f"{o}->{p}" for o, p in zip(own, picks))
    print(f"| {k} | {moves} | {mean(own)} | {mean(plain)} | {mean(picks)} |")


if __name__ == "__main__":
  main()
