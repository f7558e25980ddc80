r"""Plain-JAX reproduction: batched LAPACK calls deadlock XLA:CPU's intra-op thread pool.

  JAX_PLATFORMS=cpu python benchmarks/xla_repro_lapack_deadlock.py \
      [--batch=4] [--side=32] [--branches=32] [--op=eigh] [--calls=20] [--limit_s=20]

Nothing of monas_jax runs here. One jitted program holds ``--branches`` independent branches,
each a 3x3 convolution of a (batch, 32, 32, side) input, the (batch, side, side) Gram matrix of
its output, and a batched LAPACK call on it (``--op``: ``svd`` = gesdd, ``eigh`` = syevd via
``eigvalsh``, ``both`` = alternating). The program is called ``--calls`` times; a call that has
not returned after ``--limit_s`` seconds is reported as hung and the process exits with status 1
(its threads sit in a futex wait, no CPU).

Why (gdb backtraces of our AZ-NAS chunk of 4 and of this script, benchmarks/RESULTS.md): the
CPU LAPACK kernels of jaxlib split a batch with ``jax::ParallelBatchMap`` onto the same
intra-op pool that runs the program and block in ``BlockingCounter::Wait`` for the pieces.
When the thunk executor has started such calls on every thread of that pool (one pool thread
per core, 2 on our VM), the pieces are queued behind threads that all wait: a deadlock. Many
independent batched calls make it likely; batch 1 (one mask per call) never splits.
"""
import argparse
import os
import threading
import time

import jax
import jax.numpy as jnp


def program(batch: int, side: int, branches: int, op: str):
  def branch(x, w, i):
    y = jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    z = y.reshape(batch, -1, side)
    m = jnp.einsum("bri,brj->bij", z, z) / z.shape[1]  # (batch, side, side)
    if op == "svd" or (op == "both" and i % 2):
      return jnp.linalg.svd(m, compute_uv=False)[:, 0]
    return jnp.linalg.eigvalsh(m)[:, -1]

  def f(x, ws):
    return sum(branch(x, w, i) for i, w in enumerate(ws))

  x = jax.random.normal(jax.random.key(0), (batch, 32, 32, side))
  ws = [jax.random.normal(jax.random.key(i + 1), (3, 3, side, side)) * 0.05
        for i in range(branches)]
  return jax.jit(f).lower(x, ws).compile(), (x, ws)


def main():
  ap = argparse.ArgumentParser()
  ap.add_argument("--batch", type=int, default=4)
  ap.add_argument("--side", type=int, default=32)
  ap.add_argument("--branches", type=int, default=32)
  ap.add_argument("--op", choices=("svd", "eigh", "both"), default="eigh")
  ap.add_argument("--calls", type=int, default=20)
  ap.add_argument("--limit_s", type=float, default=20.0)
  a = ap.parse_args()
  print(f"jax {jax.__version__}, {jax.devices()[0].platform}, os.cpu_count() {os.cpu_count()}; "
        f"batch {a.batch}, side {a.side}, branches {a.branches}, op {a.op}", flush=True)
  compiled, args = program(a.batch, a.side, a.branches, a.op)
  for c in range(a.calls):
    t = time.perf_counter()
    done = threading.Event()
    threading.Thread(target=lambda: (compiled(*args).block_until_ready(), done.set()),
                     daemon=True).start()
    if not done.wait(a.limit_s):
      print(f"call {c}: HUNG (no result after {a.limit_s:g} s)", flush=True)
      os._exit(1)
    print(f"call {c}: {time.perf_counter() - t:.3f} s", flush=True)
  print(f"all {a.calls} calls finished", flush=True)
  os._exit(0)  # as above: no interpreter teardown under the runtime's threads


if __name__ == "__main__":
  main()
