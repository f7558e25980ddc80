r"""Wall time of a search command here against a reference commit, back to back on this machine.

  python benchmarks/search_ratio.py [--ref=e5d97e3] [--runs=ref,cold,warm] \
      [--args="--config=configs/cifar100.py"] [--ref_args=...] [--out=FILE.json]

Machines of this kind differ 2-3x from day to day, so a speed claim is a ratio against a
reference measured in the same sitting. Runs, in the order given:

- ``ref``: ``python -m experiments.search ARGS`` in a git worktree of ``--ref`` (created under
  ``--ref_dir`` if missing; it imports its own ``monas_jax`` from its tree, with this venv's
  packages).
- ``cold``: the same command in this checkout with an empty persistent compilation cache.
- ``warm``: again with the cache the cold run filled (the second run of a user).
- ``nocache``: this checkout with the cache off.

Each run gets a fresh workdir (nothing resumed). Prints a table (wall, compile, compute, cell,
ratio to ``ref``) and, last, one JSON object; ``--out`` also writes it atomically.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
RUNS = ("ref", "cold", "warm", "nocache")


def worktree(ref: str, where: str) -> str:
  """A checkout of ``ref`` at ``where`` (reused when it is already that commit)."""
  sha = subprocess.run(["git", "rev-parse", ref], cwd=ROOT, check=True, capture_output=True,
                       text=True).stdout.strip()
  if os.path.isdir(where):
    have = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True,
                          text=True).stdout.strip()
    if have == sha:
      return sha
    raise SystemExit(f"--ref_dir {where} exists and is not {ref} ({sha[:12]}); remove it or "
                     "pass another --ref_dir")
  subprocess.run(["git", "worktree", "add", "-f", "--detach", where, sha], cwd=ROOT, check=True,
                 capture_output=True)
  return sha


def run_one(tree: str, args: list[str], cache: str) -> dict:
  """Runs the search once in ``tree`` with MONAS_JAX_COMPILATION_CACHE=cache; wall seconds and
  the result's own timings."""
  wd = tempfile.mkdtemp(prefix="monas-ratio-")
  env = {**os.environ, "MONAS_JAX_COMPILATION_CACHE": cache, "PYTHONPATH": tree}
  cmd = [sys.executable, "-m", "experiments.search", *args, f"--workdir={wd}", "--quiet"]
  t = time.perf_counter()
  p = subprocess.run(cmd, cwd=tree, env=env, capture_output=True, text=True)
  wall = time.perf_counter() - t
  if p.returncode != 0:
    raise SystemExit(f"{' '.join(cmd)} failed in {tree} (exit {p.returncode}):\n{p.stderr[-3000:]}")
  with open(os.path.join(wd, "result.json")) as f:
    res = json.load(f)
  shutil.rmtree(wd, ignore_errors=True)
  sec = res.get("seconds", {})
  return {"wall_s": wall, "compile_s": sec.get("compile"), "compute_s": sec.get("compute"),
          "arch_str": res["arch_str"], "mode": res.get("config", {}).get("search", {}).get("mode",
                                                                                        "monas")}


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--ref", default="e5d97e3")
  ap.add_argument("--ref_dir", default=os.path.join(tempfile.gettempdir(), "monas-ref"))
  ap.add_argument("--runs", default="ref,cold,warm")
  ap.add_argument("--args", default="--config=configs/cifar100.py",
                  help="arguments of experiments.search, one string")
  ap.add_argument("--ref_args", default=None,
                  help="arguments for the ref run (default: --args), e.g. without options the "
                  "reference commit does not have")
  ap.add_argument("--out", default="")
  a = ap.parse_args()
  runs = [r for r in a.runs.split(",") if r]
  bad = [r for r in runs if r not in RUNS]
  if bad or not runs:
    raise SystemExit(f"--runs: {bad or a.runs!r} not allowed; use a comma list of {RUNS}")
  args = a.args.split()
  ref_args = args if a.ref_args is None else a.ref_args.split()
  sha = worktree(a.ref, a.ref_dir) if "ref" in runs else None
  cache = tempfile.mkdtemp(prefix="monas-ratio-cache-")
  rows = []
  for r in runs:
    tree = a.ref_dir if r == "ref" else ROOT
    c = "off" if r in ("ref", "nocache") else cache
    print(f"[{r}] running in {tree} ...", flush=True)
    rows.append({"run": r, **run_one(tree, ref_args if r == "ref" else args, c)})
    print(f"[{r}] {rows[-1]['wall_s']:.1f} s wall", flush=True)
  shutil.rmtree(cache, ignore_errors=True)
  ref = next((x["wall_s"] for x in rows if x["run"] == "ref"), None)
  print("\n| run | wall (s) | compile (s) | compute (s) | ratio to ref | cell |")
  print("| --- | --- | --- | --- | --- | --- |")
  for x in rows:
    x["ratio"] = x["wall_s"] / ref if ref else None
    f = lambda v, unit="": "–" if v is None else f"{v:.2f}{unit}" if unit else f"{v:.1f}"
    print(f"| {x['run']} | {x['wall_s']:.1f} | {f(x['compile_s'])} | {f(x['compute_s'])} | "
          f"{f(x['ratio'], 'x')} | {x['arch_str']} |")
  from monas_jax import io
  out = {"args": a.args, "ref_args": " ".join(ref_args), "ref": a.ref, "ref_sha": sha, "rows": rows, **io.environment()}
  if a.out:
    io.write_json_atomic(a.out, out)
  print(json.dumps(out))


if __name__ == "__main__":
  main()
