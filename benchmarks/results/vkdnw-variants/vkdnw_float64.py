"""VKDNW of cells through zero_cost.vkdnw_fn's code in float64 (same weights and images as
the float32 run: drawn in float32, then cast) against the float32 records; but the images are
not the records' draw (see README.md, "Corrected"). With OUT, each cell is also appended to OUT
in vkdnw_top.py's record format (cells already there are skipped)."""
import json, os, sys, time
import jax
jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp, numpy as np
from monas_jax import config as config_lib, data as data_lib, benchmark
from monas_jax.proxies import zero_cost as zc
c = config_lib.make_config("cifar10"); spec = data_lib.config_spec(c)
# argv: RECORDS INDICES [SOURCE] [vmap|direct] [OUT]; SOURCE "-": the package's zero_cost.py
arg = lambda i: sys.argv[i] if len(sys.argv) > i and sys.argv[i] != "-" else None
source = arg(3) or "monas_jax/proxies/zero_cost.py"
vmapped = arg(4) == "vmap"
out_path = arg(5)
done = ({json.loads(l)["nb201_index"] for l in open(out_path)}
        if out_path and os.path.exists(out_path) else set())
src = open(source).read()
a = '    p = models.initialize(k_init, b.params, "kaiming", "fan_in")\n    x = jax.random.normal(k_data, (batch_size, b.image_size, b.image_size, b.in_channels))\n'
assert a in src
src = src.replace(a, '    p = jax.tree_util.tree_map(lambda t: t.astype(jnp.float64), models.initialize(k_init, b.params, "kaiming", "fan_in"))\n    x = jax.random.normal(k_data, (batch_size, b.image_size, b.image_size, b.in_channels), jnp.float32).astype(jnp.float64)\n')
src = src.replace("qs = jnp.arange(1, 10, dtype=jnp.float32) / 10.0", "qs = jnp.arange(1, 10, dtype=jnp.float64) / 10.0")
ns = {}; exec(compile(src, "zc_f64", "exec"), ns)
b = ns["bench"](spec, 16, 5)
fn = ns["vkdnw_fn"](b)
recs = {json.loads(l)["nb201_index"]: json.loads(l) for l in open(sys.argv[1])}
t = benchmark.load_table(); comp = None
for idx in [int(i) for i in sys.argv[2].split(",") if int(i) not in done]:
  mask = jnp.asarray(np.eye(5, dtype=np.float32)[t.ops[idx]])
  k_data, k_init = jax.random.split(jax.random.fold_in(jax.random.key(c.seed), idx))
  kd, ki = jax.random.fold_in(k_data, 8), jax.random.fold_in(k_init, 8)
  if comp is None:
    t0 = time.perf_counter(); comp = jax.jit(jax.vmap(fn, in_axes=(0, None, None, None)) if vmapped else fn).lower(*((mask[None] if vmapped else mask), None, kd, ki)).compile(); print("compile %.1f" % (time.perf_counter() - t0), flush=True)
  t0 = time.perf_counter(); out = np.asarray(comp(mask[None] if vmapped else mask, None, kd, ki))
  sec = time.perf_counter() - t0
  print(idx, "run %.1f" % sec, "float64", out, "float32 record", recs[idx]["vkdnw_entropy"], flush=True)
  if out_path:
    key, entropy = out.reshape(2)
    with open(out_path, "a") as f:
      f.write(json.dumps({"nb201_index": idx, "arch_str": t.arch_str[idx], "vkdnw": float(key),
                          "vkdnw_entropy": float(entropy), "seconds": sec}) + "\n")
