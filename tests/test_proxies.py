"""NTK condition numbers, linear-region counts and the shared indicator signature."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from monas_jax import config as config_lib, data, models, space
from monas_jax.proxies import indicators, linear_regions, ntk


def _numpy_count(bits):
  return len(np.unique(np.asarray(bits), axis=0))


@pytest.fixture(scope="module")
def count_jit():
  return jax.jit(lambda b: linear_regions.count_distinct_rows(linear_regions.pack_bits(b)))


@pytest.mark.parametrize("seed", range(6))
def test_region_count_equals_numpy_unique(count_jit, seed):
  rng = np.random.default_rng(seed)
  n, b = 500, 70  # 70 bits: three uint32 words, the last one partly filled
  if seed % 3 == 0:  # adversarial: few distinct rows, many exact duplicates
    base = rng.random((7, b)) > 0.5
    bits = base[rng.integers(0, 7, n)]
  elif seed % 3 == 1:  # rows differing only in their last bit or in one middle bit
    bits = np.zeros((n, b), bool)
    bits[rng.random(n) > 0.5, b - 1] = True
    bits[rng.random(n) > 0.7, 33] = True
  else:
    bits = rng.random((n, b)) > 0.9
  assert int(count_jit(jnp.asarray(bits))) == _numpy_count(bits)


def test_pack_bits_is_exact():
  rng = np.random.default_rng(0)
  bits = rng.random((20, 45)) > 0.5
  words = np.asarray(linear_regions.pack_bits(jnp.asarray(bits)))
  unpacked = ((words[:, :, None] >> np.arange(32, dtype=np.uint32)) & 1).reshape(20, -1)[:, :45]
  np.testing.assert_array_equal(unpacked.astype(bool), bits)


def test_condition_number():
  ev = jnp.array([0.5, 1.0, 2.0, 4.0, 8.0])  # ascending
  assert float(ntk.condition_number(ev, 0)) == pytest.approx(16.0)
  assert float(ntk.condition_number(ev, 2)) == pytest.approx(4.0)
  assert float(ntk.condition_number(jnp.zeros(4), 0)) == ntk.NAN_CONDITION  # 0 / 0
  with pytest.raises(ValueError, match="JAX_ENABLE_X64"):
    ntk.eigenvalues(jnp.eye(3), "float64")


@pytest.fixture(scope="module")
def smoke():
  config = config_lib.make_config("cifar10", "smoke")
  x, _, _ = data.load_images("cifar10", None)
  return config, jnp.asarray(x[:256])


@pytest.mark.slow
def test_indicator_signature_and_one_compile(smoke):
  config, images = smoke
  inds = indicators.make_indicators(config)
  assert {i.name for i in inds.values()} == {"K2", "R", "F", "L"}
  key = jax.random.key(0)
  cells = [(3,) * 6, (1, 2, 3, 4, 1, 2), (0,) * 6]
  for name, ind in inds.items():

    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(mask, fn=ind.fn):
      return fn(mask, images, key)

    chex.clear_trace_counter()
    vals = [float(f(jnp.asarray(space.ops_to_mask(c)))) for c in cells]
    assert all(np.isfinite(vals)), (name, vals)
    assert len(set(vals[:2])) == 2, name  # the indicator tells two cells apart
  # The all-none cell: no gradient path through the cells -> degenerate kernel -> 1e5.
  assert float(inds["ntk"].fn(jnp.asarray(space.ops_to_mask((0,) * 6)), images, key)) \
      == ntk.NAN_CONDITION


@pytest.mark.slow
def test_ntk_fn_uses_batched_jacobian(smoke):
  """theta_fn equals empirical_ntk of the same batched forward; not a per-image vmap."""
  config, images = smoke
  net = models.Network(2, 1, 10)
  x = data.sample_batch(jax.random.key(1), images, 6, "cifar10")
  mask = jnp.asarray(space.full_mask(("none",)))
  v = net.init(jax.random.key(0), x, mask)
  theta = ntk.make_ntk_fn(net, v["params"], v["batch_stats"])(mask, x, jax.random.key(2))
  p = models.initialize(jax.random.key(2), v["params"], "kaiming", "fan_out")

  def apply_fn(p, x):
    return net.apply({"params": p, "batch_stats": v["batch_stats"]}, x, mask, train=True,
                     mutable=["batch_stats"])[0]

  np.testing.assert_allclose(theta, ntk.empirical_ntk(apply_fn, p, x, ntk.weights_only),
                             rtol=1e-5)
  assert theta.shape == (6, 6)
  np.testing.assert_allclose(theta, theta.T, rtol=1e-5)


def test_regions_depend_on_mask_and_key(smoke):
  config, images = smoke
  fn = jax.jit(indicators.regions_indicator(config).fn)
  key = jax.random.key(0)
  conv = jnp.asarray(space.ops_to_mask((3,) * 6))
  skip = jnp.asarray(space.ops_to_mask((1,) * 6))
  r_conv, r_skip = float(fn(conv, images, key)), float(fn(skip, images, key))
  assert 1 <= r_skip < r_conv <= config.regions.num_samples * config.regions.num_batches
  assert float(fn(conv, images, key)) == r_conv  # pure in the key


def test_initialize_schemes():
  params = {"conv": {"kernel": jnp.zeros((3, 3, 8, 64))}, "bn": {"scale": jnp.zeros(4),
            "bias": jnp.zeros(4)}, "classifier": {"kernel": jnp.zeros((64, 10)),
            "bias": jnp.zeros(10)}}
  k = models.initialize(jax.random.key(0), params, "kaiming", "fan_out")
  assert float(jnp.std(k["conv"]["kernel"])) == pytest.approx(np.sqrt(2 / (9 * 64)), rel=0.05)
  assert float(k["bn"]["scale"].sum()) == 4 and float(jnp.abs(k["classifier"]["bias"]).sum()) == 0
  k_in = models.initialize(jax.random.key(0), params, "kaiming", "fan_in")
  assert float(jnp.std(k_in["conv"]["kernel"])) == pytest.approx(np.sqrt(2 / (9 * 8)), rel=0.05)
  t = models.initialize(jax.random.key(0), params, "torch_default")
  bound = 1 / np.sqrt(9 * 8)
  assert float(jnp.abs(t["conv"]["kernel"]).max()) <= bound
  assert float(jnp.abs(t["conv"]["kernel"]).max()) > 0.9 * bound
  assert 0 < float(jnp.abs(t["classifier"]["bias"]).max()) <= 1 / 8
  with pytest.raises(ValueError, match="init scheme"):
    models.initialize(jax.random.key(0), params, "xavier")


def test_initialize_draws_each_leaf_from_its_own_key():
  # initialize draws leaves of one shape together (one vmapped call); the values must be those
  # of one draw per leaf from split(key, leaves)[i], which is what the recorded results used.
  params = {f"c{i}": {"kernel": jnp.zeros((3, 3, 4, 4)), "bn": {"scale": jnp.zeros(4)}}
            for i in range(3)}
  params["head"] = {"kernel": jnp.zeros((4, 10)), "bias": jnp.zeros(10)}
  flat, treedef = jax.tree_util.tree_flatten_with_path(params)
  keys = jax.random.split(jax.random.key(5), len(flat))
  for scheme in ("kaiming", "torch_default"):
    got = jax.tree_util.tree_leaves(models.initialize(jax.random.key(5), params, scheme, "fan_in"))
    for (path, leaf), k, g in zip(flat, keys, got):
      fan_in = int(np.prod(leaf.shape[:-1])) if path[-1].key == "kernel" else 4
      if path[-1].key == "kernel" and scheme == "kaiming":
        want = np.sqrt(2.0 / fan_in) * jax.random.normal(k, leaf.shape)
      elif path[-1].key == "kernel" or (path[-1].key == "bias" and scheme != "kaiming"):
        b = 1.0 / np.sqrt(fan_in)
        want = jax.random.uniform(k, leaf.shape, jnp.float32, -b, b)
      else:
        want = jnp.full(leaf.shape, 1.0 if path[-1].key == "scale" else 0.0)
      np.testing.assert_array_equal(np.asarray(g), np.asarray(want), err_msg=str(path))


def test_condition_number_guards_singular_kernels():
  big = np.finfo(np.float32).max
  # Rounding can make a PSD kernel's smallest eigenvalue slightly negative: K must not turn
  # negative (it would rank best), nor infinite (relative deltas would be NaN).
  assert float(ntk.condition_number(jnp.array([-1e-7, 0.5, 2.0]), 0)) == big
  assert float(ntk.condition_number(jnp.array([0.0, 0.5, 2.0]), 0)) == big
  assert float(ntk.condition_number(jnp.array([-1e-7, 0.5, 2.0]), 1)) == pytest.approx(4.0)


@pytest.mark.slow
def test_float64_ntk_is_computed_in_float64(smoke):
  """eig_dtype=float64 builds J J^T in float64, equal to a float64 product of the same J."""
  _, images = smoke
  net = models.Network(2, 1, 10)
  x = data.sample_batch(jax.random.key(1), images, 6, "cifar10")
  mask = jnp.asarray(space.full_mask(("none",)))
  v = jax.jit(net.init)(jax.random.key(0), x, mask)  # jitted: eager Flax init is slow on CPU
  p = jax.jit(lambda k: models.initialize(k, v["params"], "kaiming", "fan_out"))(
      jax.random.key(2))

  def apply_fn(p, x):
    return net.apply({"params": p, "batch_stats": v["batch_stats"]}, x, mask, train=True,
                     mutable=["batch_stats"])[0]

  with jax.enable_x64(True):
    jac = jax.jit(jax.jacrev(lambda q: jnp.sum(apply_fn(q, x), axis=-1)))(p)
    rows = np.concatenate([np.asarray(j).reshape(6, -1) for j in jax.tree_util.tree_leaves(jac)],
                          1).astype(np.float64)
    want = rows @ rows.T  # numpy, float64
    theta = jax.jit(lambda p: ntk.empirical_ntk(apply_fn, p, x, None, dtype="float64"))(p)
    assert theta.dtype == jnp.float64
    np.testing.assert_allclose(np.asarray(theta), want, rtol=1e-12)
  with pytest.raises(ValueError, match="JAX_ENABLE_X64"):
    ntk.empirical_ntk(apply_fn, p, x, None, dtype="float64")
