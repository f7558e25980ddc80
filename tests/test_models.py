"""Masked supernet: one-hot mask equals the standalone cell network; one compile for all masks."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from monas_jax import models, space

C, N, CLASSES, SIZE = 4, 1, 5, 8


@pytest.fixture(scope="module")
def supernet():
  net = models.Network(C, N, CLASSES)
  x = jax.random.normal(jax.random.key(1), (4, SIZE, SIZE, 3))
  variables = net.init(jax.random.key(0), x, jnp.asarray(space.full_mask()))
  return net, variables, x


def _restrict(tree, template):
  """The supernet's parameters restricted to the standalone network's tree."""
  if isinstance(template, dict):
    return {k: _restrict(tree[k], v) for k, v in template.items()}
  return tree


@pytest.mark.parametrize("train", [True, False])
def test_one_hot_supernet_equals_standalone_cell(supernet, train):
  net, variables, x = supernet
  rng = np.random.default_rng(0)
  for trial in range(4):
    ops = tuple(int(o) for o in rng.integers(0, space.NUM_OPS, space.NUM_EDGES))
    key = jax.random.key(trial)
    params = models.initialize(key, variables["params"], "torch_default")
    stats = jax.tree_util.tree_map(
        lambda s: jax.random.uniform(key, s.shape, minval=0.5, maxval=1.5), variables["batch_stats"])
    single = models.Network(C, N, CLASSES, ops_per_edge=ops)
    sv = single.init(jax.random.key(0), x)
    sub = {"params": _restrict(params, sv["params"]),
           "batch_stats": _restrict(stats, sv["batch_stats"])}
    assert jax.tree_util.tree_structure(sub) == jax.tree_util.tree_structure(
        {"params": sv["params"], "batch_stats": sv["batch_stats"]})
    mask = jnp.asarray(space.ops_to_mask(ops))
    kw = dict(mutable=["batch_stats"]) if train else {}
    y_super = net.apply({"params": params, "batch_stats": stats}, x, mask, train=train, **kw)
    y_single = single.apply(sub, x, train=train, **kw)
    if train:
      y_super, y_single = y_super[0], y_single[0]
    np.testing.assert_allclose(y_super, y_single, rtol=1e-5, atol=1e-5, err_msg=str(ops))


def test_one_compile_serves_every_mask(supernet):
  net, variables, x = supernet

  @jax.jit
  @chex.assert_max_traces(n=1)
  def apply(mask):
    return net.apply(variables, x, mask, train=False)

  chex.clear_trace_counter()
  outs = [apply(jnp.asarray(space.ops_to_mask(o))) for o in [(0,) * 6, (3,) * 6, (1, 2, 3, 4, 0, 1)]]
  outs.append(apply(jnp.asarray(space.full_mask(exclude=("none",)))))
  assert not np.allclose(outs[1], outs[2])


def test_mean_of_active_operators(supernet):
  """An edge with k active ops outputs their plain mean; pruned ops get no gradient."""
  edge = models.Edge(2)
  x = jax.random.normal(jax.random.key(0), (2, 5, 5, 2))
  v = edge.init(jax.random.key(1), x, jnp.ones(5), False)
  skip_pool = jnp.zeros(5).at[1].set(1).at[4].set(1)
  y = edge.apply(v, x, skip_pool, False)
  np.testing.assert_allclose(y, 0.5 * (x + models.avg_pool_3x3(x)), rtol=1e-6)
  with_none = skip_pool.at[0].set(1)
  np.testing.assert_allclose(edge.apply(v, x, with_none, False), y * 2 / 3, rtol=1e-5, atol=1e-7)

  def loss(p):
    return jnp.sum(edge.apply({**v, "params": p}, x, skip_pool.at[3].set(1), False) ** 2)

  g = jax.grad(loss)(v["params"])
  assert float(jnp.abs(g["nor_conv_1x1"]["conv"]["kernel"]).max()) == 0.0
  assert float(jnp.abs(g["nor_conv_3x3"]["conv"]["kernel"]).max()) > 0.0


def test_avg_pool_excludes_padding():
  x = jnp.ones((1, 3, 3, 1))
  np.testing.assert_allclose(models.avg_pool_3x3(x), x)


def _flax_avg_pool_3x3(x):
  # The formula models.avg_pool_3x3 used before its window counts became a constant.
  import flax.linen as nn
  return nn.avg_pool(x, (3, 3), strides=(1, 1), padding=((1, 1), (1, 1)), count_include_pad=False)


@pytest.mark.parametrize("shape", [(2, 32, 32, 3), (1, 8, 8, 16), (3, 7, 5, 2), (1, 1, 1, 1)])
def test_avg_pool_is_bit_for_bit_the_flax_formula(shape):
  x = jax.random.normal(jax.random.key(3), shape) * 3.0
  np.testing.assert_array_equal(models.avg_pool_3x3(x), _flax_avg_pool_3x3(x))
  jitted = jax.jit(lambda f, x: jax.grad(lambda x: jnp.sum(f(x) ** 2))(x), static_argnums=0)
  np.testing.assert_array_equal(jitted(models.avg_pool_3x3, x), jitted(_flax_avg_pool_3x3, x))
  with jax.enable_x64(True):  # the NTK's float64 path: the same dtype and values there too
    x64 = np.asarray(x, np.float64)
    new, old = models.avg_pool_3x3(x64), _flax_avg_pool_3x3(x64)
    assert new.dtype == old.dtype == jnp.float64
    np.testing.assert_array_equal(new, old)


def test_supernet_needs_mask(supernet):
  net, variables, x = supernet
  with pytest.raises(ValueError, match="mask"):
    net.apply(variables, x, train=False)
