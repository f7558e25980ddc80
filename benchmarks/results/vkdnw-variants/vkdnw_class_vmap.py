import json, sys, time, jax, jax.numpy as jnp, numpy as np
from monas_jax import models, space, config as config_lib, data as data_lib, benchmark
from monas_jax.proxies import zero_cost as zc
mode = sys.argv[1]
c = config_lib.make_config("cifar10"); spec = data_lib.config_spec(c)
b = zc.bench(spec, 16, 5)
recs = [json.loads(l) for l in open(sys.argv[2] if len(sys.argv) > 2 else "benchmarks/results/vkdnw-top/zc.vkdnw.shard0-of-1.jsonl")]
recs = [r for r in recs if str(r["nb201_index"]) in sys.argv[3].split(",")] if len(sys.argv) > 3 else recs[:2]
t = benchmark.load_table()
src = open("monas_jax/proxies/zero_cost.py").read()
if mode == "vmap":
  src = src.replace("return jax.lax.map(row, jnp.eye(b.net.num_classes))  # (k, P)", "return jax.vmap(row)(jnp.eye(b.net.num_classes))")
ns = {}; exec(compile(src, "zc_mod", "exec"), ns)
fn = ns["vkdnw_fn"](b)
comp = None
for r in recs:
  idx = r["nb201_index"]
  mask = jnp.asarray(np.eye(5, dtype=np.float32)[t.ops[idx]])
  k_data, k_init = jax.random.split(jax.random.fold_in(jax.random.key(c.seed), idx))
  kd, ki = jax.random.fold_in(k_data, 8), jax.random.fold_in(k_init, 8)
  if comp is None:
    t0 = time.perf_counter(); comp = jax.jit(fn).lower(mask, None, kd, ki).compile(); print("compile %.1f" % (time.perf_counter()-t0), flush=True)
  t0 = time.perf_counter(); out = np.asarray(comp(mask, None, kd, ki)); print(idx, "run %.1f" % (time.perf_counter()-t0), out, r["vkdnw_entropy"], flush=True)
