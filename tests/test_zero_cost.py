"""Zero-cost proxies: each checked against a direct computation of what its authors' code does.

Small benchmark-shaped networks (C=4, N=1) keep compiles short; the full C=16, N=5 values are
measured in benchmarks/ (naslib_reference.py, score_space).
"""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from monas_jax import config as config_lib, data, models, space
from monas_jax.proxies import zero_cost as zc

CELL = (3, 1, 2, 4, 3, 2)  # every operator kind but none


@pytest.fixture(scope="module")
def small():
  x, y, _ = data.load_images("cifar10", None)
  return zc.bench("cifar10", 4, 1), (jnp.asarray(x[:200]), jnp.asarray(y[:200]))


def _mask(ops):
  return jnp.asarray(space.ops_to_mask(ops))


@pytest.mark.slow
def test_synflow_log_domain_equals_float64_direct(small):
  """log synflow from the block-normalised float32 pass equals log(sum |theta dR/dtheta|)
  computed directly in float64 with BatchNorm removed (zero-cost-nas's recipe)."""
  b, _ = small
  key = jax.random.key(3)
  syn = jax.jit(zc.synflow_fn(b))
  for ops in (CELL,):
    mask = _mask(ops)
    ours = float(syn(mask, None, key))
    _, k_init = jax.random.split(key)
    with jax.enable_x64(True):
      p = jax.tree_util.tree_map(
          lambda l: jnp.abs(l).astype(jnp.float64),
          models.initialize(k_init, b.params, "torch_default"))
      stats = jax.tree_util.tree_map_with_path(
          lambda path, l: jnp.full(l.shape, 1.0 - models.BN_EPS, jnp.float64)
          if path[-1].key == "var" else jnp.zeros(l.shape, jnp.float64), b.stats)

      def r(p):
        out = b.net.apply({"params": p, "batch_stats": stats},
                          jnp.ones((1, 32, 32, 3), jnp.float64), mask.astype(jnp.float64),
                          train=False)
        return jnp.sum(out)

      g = jax.jit(jax.grad(r))(p)
      direct = float(np.log(sum(float(jnp.sum(w * gw)) for w, gw in
                                zip(zc._weights(p), zc._weights(g)))))
    assert ours == pytest.approx(direct, abs=1e-4), ops
  # A cell with no path from input to output has no synflow.
  assert float(syn(_mask((0,) * 6), None, key)) == -np.inf


def _az_nas_maps(b, key, mask, batch):
  """(params, images, feature maps, cotangent key) as az_nas_fn draws them from ``key``;
  ``batch(key) -> images``."""
  k_data, k_init = jax.random.split(key)
  k_x, k_g = jax.random.split(k_data)
  p = models.initialize(k_init, b.params, "kaiming", "fan_in")
  x = batch(k_x)
  _, st = b.net.apply({"params": p, "batch_stats": b.stats}, x, mask, train=True,
                      mutable=["batch_stats", "features"])
  return p, x, st["features"]["maps"], k_g


@pytest.mark.slow  # about 3 minutes on 2 cores: one compile per block
def test_az_nas_trainability_one_pass_equals_per_block_vjps(small):
  b, _ = small
  fn = jax.jit(zc.az_nas_fn(b, batch_size=8))
  key = jax.random.key(0)
  mask = _mask(CELL)
  e, pr, t = [float(v) for v in fn(mask, None, key)]
  # Recompute trainability with one VJP per block, as the reference does (autograd per pair).
  p, x, maps, k_g = _az_nas_maps(b, key, mask, lambda k: jax.random.normal(k, (8, 32, 32, 3)))
  gks = jax.random.split(k_g, len(maps) - 1)
  scores = []
  for l in range(len(maps) - 1):
    g_out = jax.random.rademacher(gks[l], maps[l + 1].shape, maps[l + 1].dtype)

    def block_l(h, l=l):  # the network from block l's input to its output, alone
      def bi(z, j):
        return h if j == l else z
      _, s = b.net.apply({"params": p, "batch_stats": b.stats}, x, mask, train=True,
                         block_input=bi, mutable=["batch_stats", "features"])
      return s["features"]["maps"][l + 1]

    _, vjp = jax.vjp(block_l, maps[l])
    scores.append(float(zc._pair_trainability(vjp(g_out)[0], g_out)))
  assert t == pytest.approx(np.mean(scores), rel=1e-4)
  ent = [float(zc._entropy_of_covariance(f)) for f in maps]
  assert e == pytest.approx(sum(ent), rel=1e-5)
  assert pr == pytest.approx(min(np.diff(ent)), abs=1e-5)


def test_az_nas_inputs_must_be_noise_or_data(small):
  with pytest.raises(ValueError, match="inputs must be 'noise' or 'data'"):
    zc.az_nas_fn(small[0], inputs="images")


@pytest.mark.slow
def test_az_nas_on_data_feeds_the_sampled_batch(small):
  """inputs='data': the feature maps are the network's on data.sample_batch's draw, not noise."""
  b, (images, _) = small
  key = jax.random.key(2)
  mask = _mask(CELL)
  e = float(jax.jit(zc.az_nas_fn(b, batch_size=8, inputs="data"))(mask, images, key)[0])
  _, _, maps, _ = _az_nas_maps(b, key, mask, lambda k: data.sample_batch(k, images, 8, "cifar10"))
  ent = [float(zc._entropy_of_covariance(f)) for f in maps]
  assert e == pytest.approx(sum(ent), rel=1e-5)


@pytest.mark.slow
def test_naswot_kernel_counts_agreements_of_active_relus(small):
  b, (images, labels) = small
  key = jax.random.key(1)
  mask = _mask(CELL)
  score = float(jax.jit(zc.naswot_fn(b, batch_size=16))(mask, images, key))
  k_data, k_init = jax.random.split(key)
  p = models.initialize(k_init, b.params, "torch_default")
  x = data.sample_batch(k_data, images, 16, "cifar10")
  _, st = b.net.apply({"params": p, "batch_stats": b.stats}, x, mask, train=True,
                      mutable=["batch_stats", "relu"])
  k = np.zeros((16, 16))
  for path, leaf in jax.tree_util.tree_flatten_with_path(st["relu"])[0]:
    names = [getattr(q, "key", None) for q in path]
    edge = [n for n in names if isinstance(n, str) and n.startswith("edge")]
    if edge:  # the ReLU of an operator: only if the operator is in the cell
      e = int(edge[0][4:])
      if space.OPS[CELL[e]] != names[names.index(edge[0]) + 1]:
        continue
    c = (np.asarray(leaf).reshape(16, -1) > 0).astype(np.float64)
    k += c @ c.T + (1 - c) @ (1 - c).T  # BayesWatch's hook
  assert score == pytest.approx(np.linalg.slogdet(k)[1], rel=1e-5)


@pytest.mark.slow
def test_meco_modules_counts_only_the_operators_the_mask_keeps(small):
  """MeCo over every module (the authors' hooks): the supernet with a one-hot mask gives the
  standalone cell's value (same parameters, pruned operators count nowhere); a cell with
  convolutions has more hooked maps (each adds a smallest eigenvalue >= 0) than the same cell
  with those edges as `none`."""
  b, d = small
  fn = jax.jit(zc.meco_modules_fn(b))
  key = jax.random.key(3)
  v = float(fn(_mask(CELL), d, key))
  net = models.Network(4, 1, 10, ops_per_edge=CELL)
  k_data, k_init = jax.random.split(key)
  p = models.initialize(k_init, b.params, "torch_default")
  x = data.sample_batch(k_data, d[0], 1, "cifar10")
  _, st = net.apply({"params": p, "batch_stats": b.stats}, x, train=True,
                    mutable=["batch_stats", "features", "meco"])
  maps = st["features"]["maps"]
  want = 4 * zc._smallest_correlation_eigenvalue(maps[0])
  want += sum((2.0 if i % 2 == 0 else 1.0) * zc._smallest_correlation_eigenvalue(f)
              for i, f in enumerate(maps[1:]))  # N=1: every cell is its stage's last
  for path, leaf in jax.tree_util.tree_flatten_with_path(st["meco"])[0]:
    name = [q.key for q in path if isinstance(getattr(q, "key", None), str)][-1]
    want += zc._MECO_HOOKS[name] * zc._smallest_correlation_eigenvalue(leaf)
  assert v == pytest.approx(float(want), rel=1e-4)
  assert np.isfinite(v) and v > 0


def test_cheap_proxies_one_compile_over_masks(small):
  c = config_lib.make_config("cifar10", "smoke")
  _, d = small
  names = ("synflow", "meco", "flops", "params")
  fn = zc.proxy_fn(c, names)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def f(masks):
    return jax.vmap(fn, in_axes=(0, None, None))(masks, d, jax.random.key(0))

  chex.clear_trace_counter()
  v = np.asarray(f(jnp.stack([_mask((3,) * 6), _mask((1,) * 6)])))
  v2 = np.asarray(f(jnp.stack([_mask(CELL), jnp.asarray(space.full_mask(("none",)))])))
  assert np.isfinite(v).all() and np.isfinite(v2).all()
  for n in ("flops", "params", "synflow"):  # all-conv beats all-skip
    assert v[0, names.index(n)] > v[1, names.index(n)], n
  with pytest.raises(ValueError, match="unknown proxy"):
    zc.proxy_fn(c, ("nope",))


@pytest.mark.slow  # about 6 minutes on 2 cores: compiles every proxy
def test_proxy_vector_one_compile_over_masks_and_directions(small):
  c = config_lib.make_config("cifar10", "smoke")  # zc: C=4, N=1, batch 8
  _, d = small
  names = ("expressivity", "progressivity", "trainability", "naswot", "synflow", "grad_norm",
           "snip", "jacov", "zico", "meco", "flops", "params")
  fn = zc.proxy_fn(c, names)

  @jax.jit
  @chex.assert_max_traces(n=1)
  def f(masks):
    return jax.vmap(fn, in_axes=(0, None, None))(masks, d, jax.random.key(0))

  chex.clear_trace_counter()
  masks = jnp.stack([_mask(CELL), _mask((3,) * 6), _mask((1,) * 6)])
  v = np.asarray(f(masks))
  assert v.shape == (3, len(names))
  assert np.isfinite(v[:2]).all(), v
  # A supernet mask runs too (the search scores supernets).
  sup = jnp.asarray(space.full_mask(("none",)))[None]
  assert np.asarray(f(jnp.concatenate([masks[:2], sup]))).shape == (3, len(names))
  # All-conv cell vs all-skip cell: more parameters, more FLOPs, more synflow.
  for n in ("flops", "params", "synflow"):
    assert v[1, names.index(n)] > v[2, names.index(n)], n
  # The values of one proxy do not depend on which others are asked for.
  alone = np.asarray(jax.jit(zc.proxy_fn(c, ("synflow",)))(masks[0], d, jax.random.key(0)))
  assert alone[0] == pytest.approx(v[0, names.index("synflow")], rel=1e-6)
  with pytest.raises(ValueError, match="unknown proxy"):
    zc.proxy_fn(c, ("nope",))
  with pytest.raises(ValueError, match="labels"):
    jax.jit(zc.proxy_fn(c, ("zico",)))(masks[0], d[0], jax.random.key(0))


@pytest.mark.slow
def test_vkdnw_equals_a_direct_computation_on_the_standalone_network(small):
  """VKDNW on the masked supernet equals the recipe of ondratybl/VKDNW run directly on the
  standalone network of the cell: its own parameter tensors (the count is VKDNW's dimension),
  forward-mode Jacobians of each image's logits (that image alone, batch statistics) with
  respect to each tensor's first entry, L from numpy loops of the closed form, eigenvalues by
  numpy's SVD, deciles by numpy's linear quantile."""
  b, _ = small
  fn = jax.jit(zc.vkdnw_fn(b, batch_size=8))
  key = jax.random.key(5)
  got = np.asarray(fn(_mask(CELL), None, key))
  net = models.Network(4, 1, 10, ops_per_edge=CELL)
  k_data, k_init = jax.random.split(key)
  p_full = models.initialize(k_init, b.params, "kaiming", "fan_in")
  x = jax.random.normal(k_data, (8, 32, 32, 3))
  mine = jax.eval_shape(net.init, jax.random.key(0), x[:1])["params"]
  p = jax.tree_util.tree_map_with_path(
      lambda path, _: _get(p_full, tuple(k.key for k in path)), mine)
  tensors = len(jax.tree_util.tree_leaves(p))
  assert tensors == 21 + 9 * sum(op in (2, 3) for op in CELL)  # torch's named_parameters

  def logits(delta, xi):
    moved = jax.tree_util.tree_unflatten(
        jax.tree_util.tree_structure(p),
        [l.reshape(-1).at[0].add(d).reshape(l.shape)
         for l, d in zip(jax.tree_util.tree_leaves(p), delta)])
    out, _ = net.apply({"params": moved, "batch_stats": b.stats}, xi[None], train=True,
                       mutable=["batch_stats"])
    return out[0]

  jac = np.stack([np.asarray(jax.jacfwd(logits)(jnp.zeros(tensors), xi)) for xi in x])
  out, _ = net.apply({"params": p, "batch_stats": b.stats}, x, train=True, mutable=["batch_stats"])
  fisher = 0
  for z, j in zip(np.asarray(out, np.float64), jac.astype(np.float64)):
    prob = np.exp(z - z.max()) / np.exp(z - z.max()).sum() * 0.95 + 0.005
    q = 1 - np.cumsum(prob)
    q[-1] = 0
    low = np.eye(10)
    for r in range(10):
      for c in range(r):
        low[r, c] = -prob[r] / q[c]
    d = np.sqrt(prob * q / np.concatenate([[1.0], q[:-1]]))
    low = low * d[None, :]
    np.testing.assert_allclose(low @ low.T, np.diag(prob) - np.outer(prob, prob), atol=1e-9)
    a = low @ j
    fisher = fisher + a.T @ a / len(x)
  lam = np.quantile(np.linalg.svd(fisher, compute_uv=False), np.arange(1, 10) / 10)
  t = lam / (np.abs(lam).sum() + 1e-10)
  entropy = -np.sum(t * np.log(t + 1e-10))
  # Singular values of the stacked L J put ours within 2e-5 in float32 (F's own float32
  # eigenvalues were 1.6e-4 off); multiplying by L^T instead of L moves it 4e-3.
  assert got[1] == pytest.approx(entropy, rel=2e-5)
  assert got[0] == pytest.approx(tensors + entropy / np.log(10), rel=1e-5)


@pytest.mark.slow  # about 75 s on 2 cores: two compiles of the small supernet's Jacobian
def test_first_entry_jacobian_equals_the_gradient_of_each_first_entry(small):
  """The activation-only Jacobian equals reverse-mode gradients with respect to a shift of
  each parameter tensor's first entry: every operator on (the mask's mean weights on each
  edge, a stride-2 reduction, the 1x1 shortcut without padding, BatchNorm, the classifier)
  and one cell, whose pruned operators' columns are zero."""
  b, _ = small
  p = models.initialize(jax.random.key(1), b.params, "kaiming", "fan_in")
  xi = jax.random.normal(jax.random.key(2), (32, 32, 3))
  leaves, tree = jax.tree_util.tree_flatten(p)

  def direct(mask):
    def logits(delta):
      moved = [l.reshape(-1).at[0].add(d).reshape(l.shape) for l, d in zip(leaves, delta)]
      return zc._apply(b, jax.tree_util.tree_unflatten(tree, moved), xi[None], mask)[0][0]
    return jax.jacrev(logits)(jnp.zeros(len(leaves)))

  ours = jax.jit(lambda mask: zc.first_entry_jacobian(b, p, xi, mask))
  for mask in (jnp.ones((space.NUM_EDGES, space.NUM_OPS)), _mask(CELL)):
    got, want = np.asarray(ours(mask)), np.asarray(jax.jit(direct)(mask))
    assert got.shape == (10, len(leaves))
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5 * np.abs(want).max())
  pruned = np.all(want == 0, axis=0)
  assert pruned.sum() > 0 and not np.any(got[:, pruned])


def _get(tree, path):
  for k in path:
    tree = tree[k]
  return tree
