"""zero_cost.vkdnw_fn jitted alone (float32, as committed) on the keys proxy_fn hands it, which
the scripts above did not use: proxy_fn first splits the data key (zero_cost._keys) and then
folds in the group's position (8), where they folded into the unsplit key. argv: RECORDS INDICES"""
import json, sys, time
import jax, jax.numpy as jnp, numpy as np
from monas_jax import config as config_lib, data as data_lib, benchmark
from monas_jax.proxies import zero_cost as zc
c = config_lib.make_config("cifar10")
fn = jax.jit(zc.vkdnw_fn(zc.bench(data_lib.config_spec(c), 16, 5)))
recs = {json.loads(l)["nb201_index"]: json.loads(l) for l in open(sys.argv[1])}
t = benchmark.load_table()
for idx in [int(i) for i in sys.argv[2].split(",")]:
  mask = jnp.asarray(np.eye(5, dtype=np.float32)[t.ops[idx]])
  k_data, k_init = jax.random.split(jax.random.fold_in(jax.random.key(c.seed), idx))
  kd = jax.random.fold_in(jax.random.split(k_data)[0], 8)  # proxy_fn: _keys, then the salt
  t0 = time.perf_counter(); out = np.asarray(fn(mask, None, kd, jax.random.fold_in(k_init, 8)))
  print(idx, "seconds %.1f (the first with the compile)" % (time.perf_counter() - t0), out,
        "record", recs[idx]["vkdnw_entropy"], flush=True)
