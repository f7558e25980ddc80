r"""Score NAS-Bench-201 cells with the zero-cost indicators and correlate with accuracy.

  python -m experiments.score_space --config=configs/cifar10.py --config.num_cells=1000 \
      --workdir=runs/score-c10
  (--config.num_cells=0 scores all 15,625; --config.num_shards=4 --config.shard_index=I splits
  the work over processes or machines sharing the workdir.)

Each cell is scored as its standalone network (a one-hot mask of the supernet, one compile for
all cells), one draw of data and weights per cell (key = fold_in(seed, nb201_index)): K_i for
every i from one NTK spectrum, R, and F. Records are appended per cell to
``records.shard<I>-of-<N>.jsonl``; a restart skips what is done. When every cell of the sample
has a record, writes ``correlations.json`` (Kendall tau and Spearman rho of K0..K3, R, F and the
TE-NAS rank combination against the dataset's 200-epoch test accuracy), and the K_i and
batch-size sweeps as ``sweeps.json``, ``sweeps.md`` and ``sweeps.png``.
"""
from __future__ import annotations

import copy
import glob
import json
import os
import sys
import time

from absl import app, flags
import jax
import jax.numpy as jnp
from ml_collections import config_flags
import numpy as np
from scipy import stats
import tqdm

from experiments import cli
from monas_jax import benchmark, config as config_lib, data, io
from monas_jax.proxies import cost, indicators, ntk, zero_cost
from monas_jax.search import compose, topk
from monas_jax.search.evaluate import BatchEvaluator, default_chunk_size


def sample_cells(num_cells: int, seed: int) -> np.ndarray:
  """NAS-Bench-201 indices of a uniform sample without replacement (all when num_cells = 0)."""
  if num_cells == 0:
    return np.arange(len(benchmark.load_table()))
  return np.random.default_rng(seed).choice(len(benchmark.load_table()), num_cells, replace=False)


def condition_numbers(eigvals_ascending: np.ndarray, max_index: int) -> np.ndarray:
  """K_0..K_max for each row of eigenvalues (m, n) ascending -> (m, max_index + 1)."""
  ev = np.asarray(eigvals_ascending, np.float64)
  with np.errstate(divide="ignore", invalid="ignore"):
    k = ev[:, -1:] / ev[:, :max_index + 1]
  # As ntk.condition_number: NaN -> 1e5; a singular kernel (lambda <= 0, or +inf) -> max.
  big = np.finfo(np.float32).max
  return np.where(np.isnan(k), ntk.NAN_CONDITION,
                  np.where((ev[:, :max_index + 1] <= 0) | np.isinf(k), big, k))


def read_records(pattern: str) -> dict[int, dict]:
  """NAS-Bench-201 index -> its record, from every JSON-lines file matching ``pattern`` (a line cut
  by a crash is skipped: its cell is scored again)."""
  out = {}
  for path in sorted(glob.glob(pattern)):
    with open(path) as f:
      for line in f:
        try:
          r = json.loads(line)
        except json.JSONDecodeError:
          continue  # a line cut by a crash; its cell is scored again
        out[int(r["nb201_index"])] = r
  return out


def _score(config, cells, path, images, echo, desc, with_regions):
  """Appends one record per cell not yet in any shard's file matching ``path``."""
  done = read_records(path.replace(config_shard(config), "shard*"))
  todo = [int(i) for i in cells if int(i) not in done]
  if not todo:
    return
  chunk = config.ntk.chunk_size or default_chunk_size()
  spectrum = BatchEvaluator(
      lambda m, x, k, ik: indicators.ntk_spectrum_fn(config)(m, x, k, init_key=ik), images, chunk)
  regions = (BatchEvaluator(indicators.regions_indicator(config).fn, images, chunk)
             if with_regions else None)
  echo(f"{desc}: {len(todo)} cells to score ({len(cells) - len(todo)} done); compile "
       f"{spectrum.compile_seconds + (regions.compile_seconds if regions else 0):.1f} s")
  ct = cost.cost_table(config.dataset)

  def score(mask, k_data, k_init):
    t = time.perf_counter()
    eig = spectrum(mask, k_data, k_init)[0]
    rec = {"eigenvalues": [float(v) for v in eig], "seconds_ntk": time.perf_counter() - t}
    if regions is not None:
      t = time.perf_counter()
      rec["R"] = float(regions(mask, k_data, k_init)[0])
      rec["seconds_regions"] = time.perf_counter() - t
      rec["F"] = float(ct.flops_M(mask[0]))
    return rec

  _append_records(config, path, todo, desc, score)


def _append_records(config, path, todo, desc, score):
  """One JSON line per cell of ``todo`` appended to ``path`` (flushed, so a crash loses at most
  one cell): index, arch string and ``score(mask (1, 6, 5), data key, init key) -> dict``.
  The keys of a cell depend only on the seed and its index, so shards and resumes agree."""
  table = benchmark.load_table()
  base = jax.random.key(config.seed)
  with open(path, "a") as f:
    for idx in tqdm.tqdm(todo, desc=desc, unit="cell", file=sys.stderr):
      mask = np.eye(5, dtype=np.float32)[table.ops[idx]][None]
      k_data, k_init = jax.random.split(jax.random.fold_in(base, idx))
      rec = {"nb201_index": idx, "arch_str": table.arch_str[idx], **score(mask, k_data, k_init)}
      f.write(json.dumps(rec) + "\n")
      f.flush()


def proxy_groups(names) -> list[tuple[str, tuple[str, ...]]]:
  """(file tag, proxies computed together) for the proxies asked for; flops and params are
  read from the cost table at report time, not scored."""
  out = []
  for n in names:
    if n in ("flops", "params"):
      continue
    g = next((g for g, m in zero_cost.GROUPS.items() if n in m), n)
    members = zero_cost.GROUPS.get(g, (n,))
    if all(g != t for t, _ in out):
      out.append((g, members))
  return out


def score_proxies(config, cells, workdir, data_arg, echo, names):
  """Appends one record per cell (NAS-Bench-201 indices ``cells``) and proxy group of ``names``
  to ``workdir/zc.<group>.<shard>.jsonl``, skipping cells already there (resumable); ``data_arg``
  is (images, labels) as the proxies take it."""
  shard = config_shard(config)
  for tag, members in proxy_groups(names):
    path = os.path.join(workdir, f"zc.{tag}.{shard}.jsonl")
    done = read_records(path.replace(shard, "shard*"))
    todo = [int(i) for i in cells if int(i) not in done]
    if not todo:
      continue
    ev = BatchEvaluator(zero_cost.proxy_fn(config, members), data_arg, 1)
    echo(f"{tag}: {len(todo)} cells to score ({len(cells) - len(todo)} done); compile "
         f"{ev.compile_seconds:.1f} s")

    def score(mask, k_data, k_init, ev=ev, members=members):
      t = time.perf_counter()
      v = ev(mask, k_data, k_init)[0]
      return {**{m: float(x) for m, x in zip(members, v)}, "seconds": time.perf_counter() - t}

    _append_records(config, path, todo, tag, score)


def read_proxies(workdir: str, names) -> dict[str, dict[int, float]]:
  """proxy name -> {nb201 index: value} from every shard's zc files in ``workdir``."""
  out = {}
  for tag, members in proxy_groups(names):
    recs = read_records(os.path.join(workdir, f"zc.{tag}.shard*.jsonl"))
    for m in members:
      if m in names:
        out[m] = {i: r[m] for i, r in recs.items()}
      out.setdefault(f"seconds:{tag}", {}).update({i: r["seconds"] for i, r in recs.items()})
  return out


def config_shard(config) -> str:
  return f"shard{config.shard_index}-of-{config.num_shards}"


def correlations(acc: np.ndarray, values: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
  """Kendall tau (b) and Spearman rho of each indicator against accuracy."""
  out = {}
  for name, v in values.items():
    out[name] = {"kendall_tau": float(stats.kendalltau(v, acc)[0]),
                 "spearman_rho": float(stats.spearmanr(v, acc)[0])}
  return out


def tenas_rank(k: np.ndarray, r: np.ndarray) -> np.ndarray:
  """TE-NAS combination: rank of K ascending + rank of R descending (lower is better)."""
  return stats.rankdata(k) + stats.rankdata(-r)


def run(config, workdir: str, echo=print) -> dict | None:
  """Scores this shard's cells, then reports if every shard is done. Returns correlations."""
  config_lib.validate(config)
  os.makedirs(workdir, exist_ok=True)
  images_np, labels_np, source = data.load_images(config.dataset, config.data_dir)
  images = jnp.asarray(images_np)
  echo(f"data: {source}")
  cells = sample_cells(config.num_cells, config.seed)
  mine = cells[config.shard_index::config.num_shards]
  shard = config_shard(config)
  if config.score.ntk:
    _score(config, mine, os.path.join(workdir, f"records.{shard}.jsonl"), images, echo,
           f"{config.dataset} n={config.ntk.batch_size}", with_regions=True)
  data_arg = (images, jnp.asarray(labels_np))
  score_proxies(config, mine, workdir, data_arg, echo, config.score.proxies)
  extra = cells[:config.score.extra_cells]
  score_proxies(config, extra[config.shard_index::config.num_shards], workdir, data_arg, echo,
                 config.score.extra_proxies)
  sweep = cells[:config.score.sweep_cells]
  sweep_mine = sweep[config.shard_index::config.num_shards]
  for b in config.score.batch_sizes:
    if b == config.ntk.batch_size:
      continue  # the main records already hold this batch size
    c = copy.deepcopy(config)
    c.ntk.batch_size = b
    _score(c, sweep_mine, os.path.join(workdir, f"batch{b}.{shard}.jsonl"), images, echo,
           f"batch-size sweep n={b}", with_regions=False)
  return report(config, workdir, cells, source, echo)


# Published Kendall tau vs test accuracy over all 15,625 cells, C10 / C100 / IN16
# (../shared/docs/PROXIES.md); None where the source gives no tau.
PUBLISHED_TAU = {
    "az_nas (E+P+T+FLOPs)": (0.741, 0.723, 0.710), "zico": (0.589, 0.620, 0.614),
    "naswot": (0.571, 0.607, 0.605), "jacov": (0.616, 0.639, 0.602), "tenas": (0.536, 0.537, 0.523),
    "vkdnw": (0.750, 0.753, 0.743),
}
_DATASET_COL = {"cifar10": 0, "cifar100": 1, "imagenet16_120": 2}


def ensemble_score(config, values: dict[str, np.ndarray]) -> np.ndarray:
  """The configured ensemble's composed accuracy score over cells (higher is better)."""
  e = config.ensemble
  return compose.compose({n: values[n] for n in e.indicators}, zero_cost.HIGHER_IS_BETTER,
                         dict(zip(e.indicators, e.weights)), e.rule)


def top_end(idx: np.ndarray, score=None, score_fn=None) -> dict[str, dict[str, float]]:
  """Top-end metrics (monas_jax.search.topk) of a score over the cells ``idx`` against every
  dataset's test accuracy."""
  return topk.top_end({ds: benchmark.test_accuracy(ds)[idx] for ds in _DATASET_COL},
                      score=score, score_fn=score_fn)


def proxy_correlations(config, workdir, idx, acc, table) -> tuple[dict, dict]:
  """Correlations of every scored proxy (over the cells that have it) and of the ensemble.

  Returns (correlations {name: {kendall_tau, spearman_rho, num_cells}}, seconds per cell
  {group: median}).
  """
  names = list(dict.fromkeys(tuple(config.score.proxies) + tuple(config.score.extra_proxies)))
  got = read_proxies(workdir, names)
  ops = table.ops[idx]
  masks = np.eye(5, dtype=np.float32)[ops]
  ct = cost.cost_table(config.dataset)
  values = {"flops": np.array(jax.vmap(ct.flops_M)(jnp.asarray(masks)), np.float64),
            "params": np.array(jax.vmap(ct.params_M)(jnp.asarray(masks)), np.float64)}
  out = {}
  pos = {int(i): j for j, i in enumerate(idx)}
  for n in names:
    if n in values:
      continue
    have = [i for i in idx if int(i) in got.get(n, {})]
    if len(have) < 3:
      continue
    v = np.array([got[n][int(i)] for i in have])
    a = acc[[pos[int(i)] for i in have]]
    sign = 1.0 if zero_cost.HIGHER_IS_BETTER[n] else -1.0
    out[n] = {**correlations(a, {n: v})[n], "num_cells": len(have),
              "top_end": top_end(np.asarray(have, int), score=sign * v)}
    if len(have) == len(idx):
      values[n] = v
  for n in ("flops", "params"):
    out[n] = {**correlations(acc, {n: values[n]})[n], "num_cells": len(idx),
              "top_end": top_end(idx, score=values[n])}
  # Composed scores as functions of the cells composed together: a rank composition depends
  # on its pool, so the top-end pools recompose it inside each pool, as a search would.
  composites = {}
  if all(n in values for n in config.ensemble.indicators):
    composites["ensemble"] = lambda p: ensemble_score(config, {n: v[p] for n, v in values.items()})
  az = ("expressivity", "progressivity", "trainability", "flops")
  if all(n in values for n in az):  # AZ-NAS's own aggregate, next to its published tau
    composites["az_nas (E+P+T+FLOPs)"] = lambda p: compose.compose(
        {n: values[n][p] for n in az}, zero_cost.HIGHER_IS_BETTER)
  everything = np.arange(len(idx))
  for name, fn in composites.items():
    score = fn(everything)
    # Also against the other datasets' accuracies (the proxies are scored once, on this
    # config's network and images).
    other = {ds: correlations(benchmark.test_accuracy(ds)[idx], {"s": score})["s"]
             for ds in _DATASET_COL}
    out[name] = {**correlations(acc, {"s": score})["s"], "num_cells": len(idx),
                 "by_dataset": other, "top_end": top_end(idx, score_fn=fn)}
  seconds = {k.split(":", 1)[1]: float(np.median(list(v.values())))
             for k, v in got.items() if k.startswith("seconds:") and v}
  return out, seconds


def report(config, workdir, cells, source, echo) -> dict | None:
  idx = np.asarray(cells, int)
  acc = benchmark.test_accuracy(config.dataset)[idx]
  table = benchmark.load_table()
  corr, seconds = proxy_correlations(config, workdir, idx, acc, table)
  missing = [n for n in config.score.proxies if n not in ("flops", "params")
             and corr.get(n, {}).get("num_cells", 0) < len(idx)]
  if missing:
    echo(f"proxy {missing[0]!r} is not scored on all {len(idx)} cells yet; run the other "
         "shards, then any shard again to report")
    return None
  if not config.score.ntk:
    corr["composed"] = dict(corr["ensemble"]) if "ensemble" in corr else {}
    _write_proxy_report(config, workdir, corr, seconds, len(idx), source, echo)
    return corr
  recs = read_records(os.path.join(workdir, "records.shard*.jsonl"))
  missing = [int(i) for i in cells if int(i) not in recs]
  if missing:
    echo(f"{len(cells) - len(missing)} of {len(cells)} cells scored; run the other shards, then "
         "any shard again to report")
    return None
  eig = np.array([recs[i]["eigenvalues"] for i in idx])
  ks = condition_numbers(eig, config.score.max_cond_index)
  r = np.array([recs[i]["R"] for i in idx])
  f = np.array([recs[i]["F"] for i in idx])
  main = {f"K{i}": ks[:, i] for i in range(4)}
  kc = ks[:, config.ntk.cond_index]
  main.update({"R": r, "F": f, "tenas": tenas_rank(kc, r)})
  corr.update(correlations(acc, main))
  # Top end, each higher-is-better: K (lower is better) negated, TE-NAS ranked inside each pool.
  for name, sc in ((f"K{config.ntk.cond_index}", -kc), ("R", r), ("F", f)):
    corr[name]["top_end"] = top_end(idx, sc)
  corr["tenas"]["top_end"] = top_end(idx, score_fn=lambda p: -tenas_rank(kc[p], r[p]))
  # tenas_rank is lower-is-better; the composed score is reported higher-is-better.
  composed = ({k: (-v if k != "top_end" else v) for k, v in corr["tenas"].items()}
              if config.search.mode == "monas" else corr.get("ensemble", {}))
  corr["composed"] = dict(composed)
  _write_proxy_report(config, workdir, corr, seconds, len(idx), source, echo)
  # Sweeps: tau of K_i for every i; tau of K (cond_index) and TE-NAS for every batch size.
  cond_sweep = {i: correlations(acc, {"K": ks[:, i]})["K"] for i in range(ks.shape[1])}
  sweep_idx = idx[:config.score.sweep_cells]
  batch_sweep = {}
  for b in config.score.batch_sizes if len(sweep_idx) else ():  # sweep_cells = 0: no sweep
    # The main records hold the configured batch size; the others have files of their own.
    br = recs if b == config.ntk.batch_size else read_records(
        os.path.join(workdir, f"batch{b}.shard*.jsonl"))
    if any(int(i) not in br for i in sweep_idx):
      continue
    e = np.array([br[i]["eigenvalues"] for i in sweep_idx])
    kb = condition_numbers(e, min(config.ntk.cond_index, b - 2))[:, -1]
    rb = np.array([recs[i]["R"] for i in sweep_idx])
    a = acc[:len(sweep_idx)]
    batch_sweep[b] = {**correlations(a, {"K": kb})["K"],
                      "tenas_kendall_tau": correlations(a, {"t": tenas_rank(kb, rb)})["t"]["kendall_tau"],
                      "seconds_per_cell": float(np.median([br[i]["seconds_ntk"] for i in sweep_idx]))}
  seconds = {"ntk_median": float(np.median([recs[i]["seconds_ntk"] for i in idx])),
             "regions_median": float(np.median([recs[i]["seconds_regions"] for i in idx]))}
  sweeps = {"dataset": config.dataset, "num_cells": len(idx), "sweep_cells": len(sweep_idx),
            "data_source": source, "cond_index_sweep": cond_sweep, "batch_size_sweep": batch_sweep,
            "seconds_per_cell": seconds, "correlations": corr,
            "config": json.loads(config.to_json()), **io.environment()}
  io.write_json_atomic(os.path.join(workdir, "sweeps.json"), sweeps)
  md = _markdown(config, corr, cond_sweep, batch_sweep, len(idx), len(sweep_idx), source)
  with open(os.path.join(workdir, "sweeps.md"), "w") as fh:
    fh.write(md)
  _plot(os.path.join(workdir, "sweeps.png"), config, cond_sweep, batch_sweep, len(sweep_idx))
  echo(md)
  echo(json.dumps(corr))
  return corr


def _write_proxy_report(config, workdir, corr, seconds, n, source, echo):
  """correlations.json and proxies.md: every indicator's tau next to the published figure."""
  io.write_json_atomic(os.path.join(workdir, "correlations.json"), corr)
  col = _DATASET_COL[config.dataset]
  lines = [f"## {config.dataset}: {n} random cells, data {source}, test accuracy as ground truth",
           "", f"composed = {config.search.mode} mode; ensemble = {config.ensemble.rule} of "
           f"{', '.join(config.ensemble.indicators)}", "",
           "| indicator | cells | Kendall tau | Spearman rho | published tau (all cells) | "
           "median s per cell |", "| --- | --- | --- | --- | --- | --- |"]
  group_of = {m: g for g, ms in zero_cost.GROUPS.items() for m in ms}
  pub_key = {}
  for k, v in corr.items():
    if not v:
      continue
    pub = PUBLISHED_TAU.get(pub_key.get(k, k))
    sec = seconds.get(group_of.get(k, k))
    lines.append(f"| {k} | {v.get('num_cells', n)} | {v['kendall_tau']:.3f} | "
                 f"{v['spearman_rho']:.3f} | {'' if pub is None else f'{pub[col]:.3f}'} | "
                 f"{'' if sec is None else f'{sec:.3f}'} |")
  for k, v in corr.items():
    if "by_dataset" in v:
      lines.append(f"\n{k}, Kendall tau by ground truth: " + ", ".join(
          f"{ds} {x['kendall_tau']:.3f}" for ds, x in v["by_dataset"].items()))
  lines += _top_end_tables(corr)
  md = "\n".join(lines) + "\n"
  with open(os.path.join(workdir, "proxies.md"), "w") as fh:
    fh.write(md)
  echo(md)


def _top_end_tables(corr) -> list[str]:
  """Markdown lines: one table of top-end metrics per dataset, a row per indicator."""
  rows = {k: v["top_end"] for k, v in corr.items() if v and "top_end" in v}
  if not rows:
    return []
  lines = ["", "Top end (monas_jax.search.topk): precision = share of the score's top k% in the "
           "true top k%; tau in the true top 10%; mean accuracy of the best-scored cell of 1,000 "
           "random pools of 64 / 256 cells, and of the whole sample; nDCG as VKDNW (gain "
           "2^acc - 1, k = 1000)."]
  for ds in _DATASET_COL:
    lines += ["", f"{ds}:", "", "| indicator | cells | P@1% | P@5% | P@10% | tau top 10% | "
              "best of 64 | best of 256 | best scored | nDCG |", "| --- " * 10 + "|"]
    for k, te in rows.items():
      m = te[ds]
      pools = " | ".join(f"{m[f'best_of_{p}_mean']:.2f}" if f"best_of_{p}_mean" in m else ""
                         for p in topk.POOL_SIZES)
      tau = "" if m["tau_true_top10pct"] is None else f"{m['tau_true_top10pct']:.3f}"
      lines.append(f"| {k} | {corr[k].get('num_cells', '')} | {m['precision_top1pct']:.2f} | "
                   f"{m['precision_top5pct']:.2f} | {m['precision_top10pct']:.2f} | {tau} | "
                   f"{pools} | {m['best_scored_acc']:.2f} | {m['ndcg']:.3f} |")
  return lines


def _markdown(config, corr, cond_sweep, batch_sweep, n, n_sweep, source) -> str:
  lines = [f"## {config.dataset}: {n} cells, NTK batch {config.ntk.batch_size}, "
           f"init {config.ntk.init}, data {source}", "",
           "| indicator | Kendall tau | Spearman rho |", "| --- | --- | --- |"]
  lines += [f"| {k} | {v['kendall_tau']:.3f} | {v['spearman_rho']:.3f} |" for k, v in corr.items()]
  lines += ["", f"K_i sweep ({n} cells):", "", "| i | Kendall tau | Spearman rho |",
            "| --- | --- | --- |"]
  lines += [f"| {i} | {v['kendall_tau']:.3f} | {v['spearman_rho']:.3f} |"
            for i, v in cond_sweep.items()]
  lines += ["", f"Batch-size sweep ({n_sweep} cells, K_{config.ntk.cond_index}):", "",
            "| batch | tau(K) | rho(K) | tau(TE-NAS) | s per cell (NTK) |",
            "| --- | --- | --- | --- | --- |"]
  lines += [f"| {b} | {v['kendall_tau']:.3f} | {v['spearman_rho']:.3f} | "
            f"{v['tenas_kendall_tau']:.3f} | {v['seconds_per_cell']:.3f} |"
            for b, v in sorted(batch_sweep.items())]
  return "\n".join(lines) + "\n"


def _plot(path, config, cond_sweep, batch_sweep, n_sweep):
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
  i = sorted(cond_sweep)
  axes[0].plot(i, [cond_sweep[j]["kendall_tau"] for j in i], "o-")
  axes[0].set(xlabel="i in K_i = lambda_1 / lambda_(n-i)", ylabel="Kendall tau with test acc",
              title=f"{config.dataset}: condition-number index")
  b = sorted(batch_sweep)
  axes[1].plot(b, [batch_sweep[x]["kendall_tau"] for x in b], "o-", label=f"K_{config.ntk.cond_index}")
  axes[1].plot(b, [batch_sweep[x]["tenas_kendall_tau"] for x in b], "s-", label="TE-NAS rank")
  axes[1].set_xscale("log", base=2)
  axes[1].set(xlabel="NTK batch size", ylabel="Kendall tau with test acc",
              title=f"batch size ({n_sweep} cells)")
  if b:
    axes[1].legend()
  for ax in axes:
    ax.axhline(0, color="grey", lw=0.5)
    ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)


def main(argv):
  del argv
  config = cli.validated(flags.FLAGS.config)
  cli.setup_runtime(config)
  workdir = flags.FLAGS.workdir or os.path.join("runs", f"score-{config.dataset}")
  cli.run_or_exit(run, config, workdir)


if __name__ == "__main__":
  # Flags are defined only when run as a command, so tests and other commands can import.
  config_flags.DEFINE_config_file("config", "configs/cifar10.py", "Config file.")
  flags.DEFINE_string("workdir", None, "Output folder (default runs/score-<dataset>).")
  app.run(main, flags_parser=cli.parse_flags)
