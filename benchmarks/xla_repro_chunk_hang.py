r"""Reproduction attempt: a vmapped chunk of ensemble masks hanging in XLA:CPU.

  JAX_PLATFORMS=cpu python benchmarks/xla_repro_chunk_hang.py \
      [--names=expressivity,trainability,flops,synflow,meco] [--chunks=1,4] [--channels=16] \
      [--cells_per_stage=5] [--limit_s=900]

Context (monas_jax/search/__init__.py, BUILD.md): mode ensemble's proxies at C=16, N=5, jitted
and vmapped over a chunk of 4 masks, hung after compiling, at 0 % CPU in a futex wait. Each case
runs in a fresh process: compile ``jit(vmap(proxy_fn(names)))`` for the chunk, then one call on
the bundled CIFAR-10 images. The parent samples the child's CPU time every 10 s and kills it at
``--limit_s``: a child that stopped using CPU for 60 s before finishing is reported as hung (a
deadlock), one still computing as slow. Prints one line per case.

The cause, found with gdb and shown without our code by benchmarks/xla_repro_lapack_deadlock.py:
jaxlib's CPU LAPACK kernels (batched svd/eigh, AZ-NAS's) split the batch onto XLA's intra-op
pool and block until the pieces finish; with every pool thread in such a call, none runs them.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child(names: str, chunk: int, channels: int, cells_per_stage: int) -> None:
  """Compiles and runs one case in this process; prints a JSON line after each phase."""
  sys.path.insert(0, ROOT)
  import jax
  import jax.numpy as jnp
  import numpy as np
  from monas_jax import config as config_lib, data
  from monas_jax.proxies import zero_cost

  c = config_lib.make_config("cifar10")
  c.zc.channels, c.zc.cells_per_stage = channels, cells_per_stage
  fn = zero_cost.proxy_fn(c, tuple(names.split(",")))
  images = jnp.asarray(data.load_images("cifar10", None)[0])
  batched = jax.jit(jax.vmap(fn, in_axes=(0, None, None, None)))
  rng = np.random.default_rng(0)
  masks = (rng.random((chunk, 6, 5)) < 0.5).astype(np.float32)
  masks[:, np.arange(6), rng.integers(0, 5, 6)] = 1.0
  key, init_key = jax.random.split(jax.random.key(0))
  t = time.perf_counter()
  compiled = batched.lower(jnp.asarray(masks), images, key, init_key).compile()
  print(json.dumps({"phase": "compiled", "seconds": time.perf_counter() - t}), flush=True)
  t = time.perf_counter()
  out = np.asarray(compiled(jnp.asarray(masks), images, key, init_key))
  print(json.dumps({"phase": "ran", "seconds": time.perf_counter() - t,
                    "values": np.round(out, 4).tolist()}), flush=True)


def _cpu_seconds(pid: int) -> float:
  """User + system CPU seconds of a process so far (Linux /proc)."""
  with open(f"/proc/{pid}/stat") as f:
    fields = f.read().rsplit(")", 1)[1].split()
  return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_case(names, chunk, channels, cells_per_stage, limit_s):
  env = {**os.environ, "JAX_PLATFORMS": "cpu"}
  p = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--child", names, str(chunk),
                        str(channels), str(cells_per_stage)], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, env=env)
  t0, samples = time.time(), []
  while p.poll() is None and time.time() - t0 < limit_s:
    time.sleep(10)
    try:
      samples.append((time.time() - t0, _cpu_seconds(p.pid)))
    except OSError:
      break
  killed = p.poll() is None
  if killed:
    p.kill()
  out, err = p.communicate()
  phases = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
  idle = [s for s in samples if s[0] >= samples[-1][0] - 60] if samples else []
  cpu_last_60s = idle[-1][1] - idle[0][1] if len(idle) > 1 else None
  state = ("finished" if not killed and p.returncode == 0 else
           "error" if not killed else
           "hung (no CPU in the last 60 s)" if cpu_last_60s is not None and cpu_last_60s < 1.0
           else "slow (still computing)")
  return {"names": names, "chunk": chunk, "channels": channels,
          "cells_per_stage": cells_per_stage, "state": state, "wall_s": round(time.time() - t0),
          "phases": phases, "cpu_s_last_60s": cpu_last_60s,
          "stderr_tail": err.strip().splitlines()[-1:] if p.returncode not in (0, None) and not
          killed else []}


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--names", default="expressivity,trainability,flops,synflow,meco")
  ap.add_argument("--chunks", default="1,4")
  ap.add_argument("--channels", type=int, default=16)
  ap.add_argument("--cells_per_stage", type=int, default=5)
  ap.add_argument("--limit_s", type=int, default=900)
  ap.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
  a = ap.parse_args()
  if a.child:
    child(a.child[0], int(a.child[1]), int(a.child[2]), int(a.child[3]))
    return
  import jax
  print(f"jax {jax.__version__}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}", flush=True)
  for chunk in [int(v) for v in a.chunks.split(",")]:
    r = run_case(a.names, chunk, a.channels, a.cells_per_stage, a.limit_s)
    print(json.dumps(r), flush=True)


if __name__ == "__main__":
  main()
