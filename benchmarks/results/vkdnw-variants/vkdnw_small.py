import sys, time, jax
x64 = sys.argv[1] == "64"
if x64: jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp, numpy as np
from monas_jax import space
src = open("monas_jax/proxies/zero_cost.py").read()
if x64:
  a = '    p = models.initialize(k_init, b.params, "kaiming", "fan_in")\n    x = jax.random.normal(k_data, (batch_size, b.image_size, b.image_size, b.in_channels))\n'
  src = src.replace(a, '    p = jax.tree_util.tree_map(lambda t: t.astype(jnp.float64), models.initialize(k_init, b.params, "kaiming", "fan_in"))\n    x = jax.random.normal(k_data, (batch_size, b.image_size, b.image_size, b.in_channels), jnp.float32).astype(jnp.float64)\n')
  src = src.replace("qs = jnp.arange(1, 10, dtype=jnp.float32) / 10.0", "qs = jnp.arange(1, 10, dtype=jnp.float64) / 10.0")
ns = {}; exec(compile(src, "zc", "exec"), ns)
C, N, B = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
b = ns["bench"]("cifar10", C, N); fn = ns["vkdnw_fn"](b, batch_size=B)
cells = ["|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
         "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_3x3~1|nor_conv_3x3~2|"]
masks = jnp.stack([jnp.asarray(space.ops_to_mask(space.parse_arch_str(c)), jnp.float32) for c in cells])
key = jax.random.key(3)
d = jax.jit(fn); v = jax.jit(jax.vmap(fn, in_axes=(0, None, None)))
for i in range(2):
  print("x64" if x64 else "f32", i, "direct", float(d(masks[i], None, key)[1]), "vmapped", float(v(masks[i:i+1], None, key)[0, 1]), flush=True)
