"""Published training-free proxies as pure functions of an operator mask.

Every proxy here runs on the C=16, N=5 NAS-Bench-201 network (``models.Network``; the
benchmark network, the one the published correlations score), with the (6, 5) mask selecting
its operators: a one-hot mask is the standalone cell's network, a multi-operator mask the
supernet whose edges average their active operators. One compile serves every mask.

Signature (as every indicator of this package): ``fn(mask, data, key, init_key=None)`` where
``data`` is uint8 images (n, h, w, 3) or a pair (images, integer labels (n,)) for the proxies
that need labels (grad_norm, snip, ZiCo); ``key`` draws the batch, ``init_key`` (default: split
from ``key``) the weights. Each follows its authors' code; where that code and its paper differ
the choice is named in the function's docstring.

  proxy          authors' code                          init              input
  az_nas (E,P,T) cvlab-yonsei/AZ-NAS compute_az_nas_score Kaiming normal fan-in  64 N(0,1) images
  naswot         BayesWatch/nas-without-training         PyTorch default   64 real images
  synflow        SamsungLabs/zero-cost-nas, NASLib       PyTorch default   one all-ones image
  grad_norm/snip NASLib measures                         PyTorch default   64 labelled images
  jacov          NASLib jacob_cov                        PyTorch default   64 real images
  zico           SLDGroup/ZiCo compute_zico              PyTorch default   2 x 64 labelled images
  meco           HamsterMimi/MeCo meco.py                PyTorch default   one N(0,1) 64x64 image
  meco_modules   HamsterMimi/MeCo correlation script     PyTorch default   one real 32x32 image
  vkdnw          ondratybl/VKDNW compute_vkdnw_score     Kaiming normal fan-in  32 N(0,1) images

The batch is ``config.zc.batch_size`` (64). NASLib's stored NB201 values (the reference of
benchmarks/naslib_reference.py) were computed on 32 images: jacov scores -n for n uncorrelated
images and NASLib's values level off at -32.2, ours at -65 with 64.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_collections

from monas_jax import data as data_lib, models, space
from monas_jax.proxies import linear_regions

# Every proxy's direction: True when a larger value predicts a more accurate cell.
HIGHER_IS_BETTER = {
    "expressivity": True, "progressivity": True, "trainability": True, "naswot": True,
    "synflow": True, "grad_norm": True, "snip": True, "jacov": True, "zico": True, "meco": True,
    "params": True, "flops": True, "meco_modules": True, "vkdnw": True, "vkdnw_entropy": True,
}
PROXIES = tuple(HIGHER_IS_BETTER)
# Proxies computed together from one forward/backward pass.
GROUPS = {"az_nas": ("expressivity", "progressivity", "trainability"),
          "gradients": ("grad_norm", "snip"), "vkdnw": ("vkdnw", "vkdnw_entropy")}


@dataclasses.dataclass(frozen=True)
class Bench:
  """The benchmark network and zero-valued templates of its variables."""

  net: models.Network
  params: dict
  stats: dict
  dataset: "str | data_lib.DataSpec"
  image_size: int
  in_channels: int = 3


def bench(dataset: "str | data_lib.DataSpec", channels: int = 16,
          cells_per_stage: int = 5) -> Bench:
  """The C=channels, N=cells_per_stage network of ``dataset`` (a name of data.DATASETS or a
  data.DataSpec: input side, channels, classes) with template variables."""
  spec = data_lib.as_spec(dataset)
  net = models.Network(channels, cells_per_stage, spec.num_classes)
  size = spec.image_size
  v = jax.eval_shape(net.init, jax.random.key(0), jnp.zeros((2, size, size, spec.channels)),
                     jnp.ones((space.NUM_EDGES, space.NUM_OPS)))
  zeros = lambda t: jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), t)
  return Bench(net, zeros(v["params"]), zeros(v["batch_stats"]), dataset, size, spec.channels)


def _split(data):
  if isinstance(data, (tuple, list)):
    return data[0], data[1]
  return data, None


def _keys(key, init_key):
  k_data, k_init = jax.random.split(key)
  return k_data, (k_init if init_key is None else init_key)


def _labelled_batch(key, images, labels, batch_size, dataset):
  """Augmented, normalised images (b, h, w, 3) and their labels (b,), the same draw."""
  if labels is None:
    raise ValueError("this proxy needs labels: pass data=(images, labels)")
  k_idx, k_aug = jax.random.split(key)
  idx = data_lib.spread_indices(k_idx, images.shape[0], batch_size)
  x = data_lib.normalize(data_lib.augment(k_aug, jnp.asarray(images)[idx], dataset), dataset)
  return x, jnp.asarray(labels)[idx].astype(jnp.int32)


def _apply(b: Bench, p, x, mask, *, train=True, stats=None, block_input=None, collections=()):
  """Logits and the requested sown collections; BatchNorm updates are discarded."""
  out, state = b.net.apply({"params": p, "batch_stats": b.stats if stats is None else stats},
                           x, mask, train=train, block_input=block_input,
                           mutable=["batch_stats", *collections])
  return out, state


def _is_weight(path) -> bool:
  """Conv and Dense kernels: the layers every gradient proxy sums over (nn.Conv2d/nn.Linear)."""
  return getattr(path[-1], "key", None) == "kernel"


def _weights(tree):
  return [l for p, l in jax.tree_util.tree_flatten_with_path(tree)[0] if _is_weight(p)]


# --------------------------------------------------------------------------------------------
# AZ-NAS: expressivity, progressivity, trainability.

def _entropy_of_covariance(f):
  """Entropy of the normalised eigenvalues of the channel covariance of a map (n, h, w, c)."""
  z = f.reshape(-1, f.shape[-1])
  z = z - z.mean(axis=0, keepdims=True)
  sigma = z.T @ z / z.shape[0]
  s = jnp.linalg.eigvalsh(sigma)
  p = s / jnp.sum(s)
  return jnp.sum(-p * jnp.log(p + 1e-8))


def _space_to_depth(g, r):
  n, h, w, c = g.shape
  g = g.reshape(n, h // r, r, w // r, r, c).transpose(0, 1, 3, 5, 2, 4)
  return g.reshape(n, h // r, w // r, c * r * r)  # PixelUnshuffle's channel order


def _pair_trainability(g_in, g_out):
  """-s_max - 1/s_max + 2 of G_in^T G_out / (BHW); -inf when the block is the identity."""
  same = jnp.all(g_in == g_out) if g_in.shape == g_out.shape else jnp.asarray(False)
  if g_in.shape[1] != g_out.shape[1]:
    g_in = _space_to_depth(g_in, g_in.shape[1] // g_out.shape[1])
  a = g_in.reshape(-1, g_in.shape[-1])
  o = g_out.reshape(-1, g_out.shape[-1])
  mat = a.T @ o / o.shape[0]
  s_max = jnp.linalg.svd(mat, compute_uv=False)[0]
  score = -s_max - 1.0 / (s_max + 1e-6) + 2.0
  return jnp.where(same, -jnp.inf, score)


def az_nas_fn(b: Bench, batch_size: int = 64, inputs: str = "noise") -> Callable:
  """``fn(mask, data, key, init_key) -> (3,)``: AZ-NAS expressivity, progressivity, trainability.

  Follows compute_az_nas_score.py: Kaiming-normal fan-in weights, training-mode BatchNorm, a
  batch of N(0, 1) images (``inputs='noise'``, the reference's, and the data argument is unused;
  ``'data'``: ``data.sample_batch``'s augmented batch of the images in ``data`` instead), feature
  maps = stem output and every cell and reduction output (3N + 3 maps). Trainability uses one
  backward pass for all block pairs (``probes``: each block's input is detached, so the gradient
  reaching block l's probe is exactly that block's VJP of the +-1 cotangent at its output). NaN
  becomes -inf, as the reference does. Units: nats (E, P); T is dimensionless (<= 0).
  """
  if inputs not in ("noise", "data"):
    raise ValueError(f"inputs must be 'noise' or 'data', got {inputs!r}")

  def fn(mask, data, key, init_key=None):
    k_data, k_init = _keys(key, init_key)
    k_x, k_g = jax.random.split(k_data)
    p = models.initialize(k_init, b.params, "kaiming", "fan_in")
    if inputs == "data":
      x = data_lib.sample_batch(k_x, _split(data)[0], batch_size, b.dataset)
    else:
      x = jax.random.normal(k_x, (batch_size, b.image_size, b.image_size, b.in_channels))
    # Trainability: probes (zeros) at every block input, cotangents +-1 at every block output.
    # The probes leave the forward values as they are, so this one pass also gives E's maps.
    shapes = jax.eval_shape(
        lambda: _apply(b, p, x, mask, collections=("features",))[1]["features"]["maps"])
    probes = [jnp.zeros(f.shape, f.dtype) for f in shapes[:-1]]

    def outputs(probes):
      _, s = _apply(b, p, x, mask, block_input=lambda h, l: jax.lax.stop_gradient(h) + probes[l],
                    collections=("features",))
      maps = s["features"]["maps"]
      return tuple(maps[1:]), maps

    _, vjp, maps = jax.vjp(outputs, probes, has_aux=True)
    ent = jnp.stack([_entropy_of_covariance(f) for f in maps])
    expressivity = jnp.sum(ent)
    progressivity = jnp.min(ent[1:] - ent[:-1])
    gks = jax.random.split(k_g, len(maps) - 1)
    g_outs = [jax.random.rademacher(k, f.shape, f.dtype) for k, f in zip(gks, maps[1:])]
    (g_ins,) = vjp(tuple(g_outs))
    t = jnp.stack([_pair_trainability(gi, go) for gi, go in zip(g_ins, g_outs)])
    trainability = jnp.mean(t)
    out = jnp.stack([expressivity, progressivity, trainability])
    return jnp.where(jnp.isnan(out), -jnp.inf, out)

  return fn


# --------------------------------------------------------------------------------------------
# NASWOT.

def _relu_bits(relu_tree, mask):
  """(n, bits) float 0/1 sign bits of every active ReLU and (bits,) their validity."""
  cols, valid = [], []
  for path, leaf in jax.tree_util.tree_flatten_with_path(relu_tree)[0]:
    bits = (leaf > 0).reshape(leaf.shape[0], -1).astype(jnp.float32)
    where = linear_regions.edge_op(path)  # (edge, op) of an operator's ReLU, else None
    v = jnp.asarray(1.0) if where is None else mask[where]
    cols.append(bits * v)
    valid.append(v * jnp.ones(bits.shape[1]))
  return jnp.concatenate(cols, 1), jnp.concatenate(valid)


def naswot_fn(b: Bench, batch_size: int = 64) -> Callable:
  """``fn(mask, data, key, init_key) -> scalar``: NASWOT log|K| (nats), higher is better.

  K_ij = number of ReLUs (units) on which images i and j agree (both on or both off), summed
  over every active ReLU of the network; BayesWatch's hook adds x x^T + (1-x)(1-x)^T per ReLU.
  Written as 2 c c^T - n_i - n_j + |valid| so that one matmul serves both terms and a pruned
  operator's ReLUs (absent from its standalone network) count nowhere. Batch 64 (the paper
  uses 128; configurable). The batch is ``data.sample_batch``'s: randomly cropped and flipped,
  as the NTK's is; BayesWatch's reference loads its batch without augmentation
  (``augtype='none'``), so values differ from theirs by the augmentation's draw.
  """

  def fn(mask, data, key, init_key=None):
    images, _ = _split(data)
    k_data, k_init = _keys(key, init_key)
    p = models.initialize(k_init, b.params, "torch_default")
    x = data_lib.sample_batch(k_data, images, batch_size, b.dataset)
    _, st = _apply(b, p, x, mask, collections=("relu",))
    c, v = _relu_bits(st["relu"], mask)
    cc = jnp.dot(c, c.T, precision=jax.lax.Precision.HIGHEST)
    n = jnp.sum(c, axis=1)
    k = 2.0 * cc - n[:, None] - n[None, :] + jnp.sum(v)
    return jnp.linalg.slogdet(k.astype(jnp.float32))[1]

  return fn


# --------------------------------------------------------------------------------------------
# synflow.

def synflow_fn(b: Bench) -> Callable:
  """``fn(mask, data, key, init_key) -> scalar``: log of synflow, log(sum |theta dR/dtheta|).

  What this computes: parameters replaced by their absolute values, BatchNorm bypassed exactly
  (eval mode, running mean 0, variance 1 - eps), one all-ones input, R = the sum of the logits,
  the sum over conv and linear weights, biases left out (PyTorch default initialisation). The
  reference codes are not one definition: zero-cost-nas measures in float64 on a copy of the
  network made with ``bn=False``; NASLib's port (same measure) runs on its own NAS-Bench-201
  graph, whose BatchNorm mode and convolution biases are that graph's, not ours. NASLib's stored
  values are a logarithm of its measure; ours agree with them in order (Spearman 0.999 on 491
  cells, ``benchmarks/naslib_reference.py``), not value for value.

  Float32 without overflow: with positive weights and input every ReLU passes its input, so
  every block is positively homogeneous of degree 1. Dividing each block's input by a constant
  c_l divides R, and every dR/dtheta, by prod c_l exactly; the c_l (each block input's mean,
  held constant by stop_gradient) are added back as sum log c_l. -inf for a cell with no path
  from input to output.
  """
  # BatchNorm bypassed exactly: eval mode with running mean 0 and variance 1 - eps.
  stats = jax.tree_util.tree_map_with_path(
      lambda path, l: jnp.full_like(l, 1.0 - models.BN_EPS) if path[-1].key == "var"
      else jnp.zeros_like(l), b.stats)

  def fn(mask, data, key, init_key=None):
    del data
    _, k_init = _keys(key, init_key)
    p = jax.tree_util.tree_map(jnp.abs, models.initialize(k_init, b.params, "torch_default"))
    x = jnp.ones((1, b.image_size, b.image_size, b.in_channels))

    def r(p):
      def scale(h, l):
        del l
        return h / jax.lax.stop_gradient(jnp.maximum(jnp.mean(h), 1e-30))

      out, st = _apply(b, p, x, mask, train=False, stats=stats, block_input=scale,
                       collections=("features",))
      log_c = sum(jnp.log(jnp.maximum(jnp.mean(f), 1e-30)) for f in st["features"]["maps"][:-1])
      return jnp.sum(out), log_c

    g, log_c = jax.grad(r, has_aux=True)(p)
    total = sum(jnp.sum(w * gw) for w, gw in zip(_weights(p), _weights(g)))
    out = jnp.log(total) + log_c
    return jnp.where(jnp.isnan(out), -jnp.inf, out)

  return fn


# --------------------------------------------------------------------------------------------
# Gradient proxies on labelled data: grad_norm, snip (one backward), ZiCo (two).

def _ce_grads(b: Bench, p, x, y, mask):
  def loss(p):
    logits, _ = _apply(b, p, x, mask)
    return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))
  return jax.grad(loss)(p)


def gradients_fn(b: Bench, batch_size: int = 64) -> Callable:
  """``fn(mask, (images, labels), key, init_key) -> (2,)``: NASLib grad_norm and snip.

  Cross-entropy on one augmented labelled batch, training-mode BatchNorm, PyTorch default
  initialisation. grad_norm = sum over conv/linear layers of ||dL/dW||_2; snip = sum over
  them of |W * dL/dW|. Layers of pruned operators are left out (they are absent from the
  standalone network; their gradient is zero anyway).
  """

  def fn(mask, data, key, init_key=None):
    images, labels = _split(data)
    k_data, k_init = _keys(key, init_key)
    p = models.initialize(k_init, b.params, "torch_default")
    x, y = _labelled_batch(k_data, images, labels, batch_size, b.dataset)
    g = _ce_grads(b, p, x, y, mask)
    gw, w = _weights(g), _weights(p)
    grad_norm = sum(jnp.sqrt(jnp.sum(gl ** 2)) for gl in gw)
    snip = sum(jnp.sum(jnp.abs(gl * wl)) for gl, wl in zip(gw, w))
    return jnp.stack([grad_norm, snip])

  return fn


def zico_fn(b: Bench, batch_size: int = 64, num_batches: int = 2) -> Callable:
  """``fn(mask, (images, labels), key, init_key) -> scalar``: ZiCo (SLDGroup/ZiCo code).

  Gradients of conv/linear weights on ``num_batches`` labelled batches (one forward and
  backward each, training-mode BatchNorm, PyTorch default init). Per layer: sum over weights
  with non-zero std of mean_b |g| / std_b g (population std of the signed gradient, as the
  code's np.std; the paper writes the std of |g|), then log; ZiCo = sum of the logs over
  layers whose sum is non-zero.
  """

  def fn(mask, data, key, init_key=None):
    images, labels = _split(data)
    k_data, k_init = _keys(key, init_key)
    p = models.initialize(k_init, b.params, "torch_default")
    grads = []
    for k in jax.random.split(k_data, num_batches):
      x, y = _labelled_batch(k, images, labels, batch_size, b.dataset)
      grads.append(_weights(_ce_grads(b, p, x, y, mask)))
    total = 0.0
    for layer in zip(*grads):
      g = jnp.stack(layer).reshape(num_batches, -1)
      std = jnp.std(g, axis=0)
      ok = std > 0
      ratio = jnp.where(ok, jnp.mean(jnp.abs(g), axis=0) / jnp.where(ok, std, 1.0), 0.0)
      s = jnp.sum(ratio)
      total = total + jnp.where(s > 0, jnp.log(jnp.where(s > 0, s, 1.0)), 0.0)
    return total

  return fn


# --------------------------------------------------------------------------------------------
# jacob_cov and MeCo.

def jacov_fn(b: Bench, batch_size: int = 64) -> Callable:
  """``fn(mask, data, key, init_key) -> scalar``: NASLib jacob_cov.

  J = d(sum of logits)/d(input) per image, flattened (b, h*w*3); correlation matrix of its rows;
  score = -sum(log(v + 1e-5) + 1 / (v + 1e-5)) over its eigenvalues v. PyTorch default init,
  training-mode BatchNorm. Higher is better.
  """

  def fn(mask, data, key, init_key=None):
    images, _ = _split(data)
    k_data, k_init = _keys(key, init_key)
    p = models.initialize(k_init, b.params, "torch_default")
    x = data_lib.sample_batch(k_data, images, batch_size, b.dataset)
    j = jax.grad(lambda x: jnp.sum(_apply(b, p, x, mask)[0]))(x).reshape(batch_size, -1)
    j = j - j.mean(axis=1, keepdims=True)
    j = j / jnp.maximum(jnp.linalg.norm(j, axis=1, keepdims=True), 1e-30)
    v = jnp.linalg.eigvalsh(j @ j.T)
    k = 1e-5
    out = -jnp.sum(jnp.log(v + k) + 1.0 / (v + k))
    return jnp.where(jnp.isnan(out), -jnp.inf, out)

  return fn


def _smallest_correlation_eigenvalue(f):
  """Smallest eigenvalue of the channel correlation matrix of the first sample of a map
  (n, h, w, c); NaN entries (a constant channel) become 0, as in MeCo's code."""
  z = f[0].reshape(-1, f.shape[-1]).T  # (C, HW)
  z = z - z.mean(axis=1, keepdims=True)
  nrm = jnp.linalg.norm(z, axis=1)
  corr = (z @ z.T) / (nrm[:, None] * nrm[None, :])
  corr = jnp.where(jnp.isfinite(corr), corr, 0.0)
  return jnp.linalg.eigvalsh(corr)[0]


def meco_fn(b: Bench, size: int = 64) -> Callable:
  """``fn(mask, data, key, init_key) -> scalar``: MeCo, sum of the smallest eigenvalue of the
  channel correlation matrix of each feature map of one N(0, 1) image (size x size, as the
  authors' pruning code ``meco.py`` draws).

  The maps are the stem output and every cell and reduction output, each counted once (the
  authors' correlation script hooks every module instead: ``meco_modules_fn``).
  """

  def fn(mask, data, key, init_key=None):
    del data
    k_data, k_init = _keys(key, init_key)
    p = models.initialize(k_init, b.params, "torch_default")
    x = jax.random.normal(k_data, (1, size, size, b.in_channels))
    _, st = _apply(b, p, x, mask, collections=("features",))
    return sum(_smallest_correlation_eigenvalue(f) for f in st["features"]["maps"])

  return fn


# How many of the authors' forward hooks see each sown map (HamsterMimi/MeCo,
# correlation/NAS_Bench_201.py on foresight's NAS201Model): a conv operator's ReLU output once
# and its conv output four times (ReLUConvBN, its Sequential, Conv and BN: in training-mode BN
# on one image the BN output is a per-channel affine map of the conv output, the same
# correlation); skip once; pooling twice (POOLING and its AvgPool2d); a reduction block's
# shortcut pool once and shortcut conv twice (its Sequential and Conv).
_MECO_HOOKS = {"relu_out": 1, "conv_out": 4, "skip_connect": 1, "avg_pool_3x3": 2,
               "shortcut_pool": 1, "shortcut_out": 2}


def meco_modules_fn(b: Bench) -> Callable:
  """``fn(mask, data, key, init_key) -> scalar``: MeCo as its authors' correlation script
  computes it (the Spearman 0.894 on NAS-Bench-201): the smallest eigenvalue of the channel
  correlation of every module output that runs, summed, for one real augmented image.

  Per module as their hooks count it (``_MECO_HOOKS``): the stem four times (module, Sequential,
  Conv, BN), every cell once and the last cell of each stage twice (its stage's Sequential),
  every reduction block's output once, and the operators and reduction internals above; the
  classifier's pooled outputs give 0. PyTorch default initialisation, training-mode BatchNorm,
  one image from ``data`` (random crop and flip, normalised). Operators a mask prunes count
  nowhere.
  """
  n = b.net.cells_per_stage

  def fn(mask, data, key, init_key=None):
    images, _ = _split(data)
    k_data, k_init = _keys(key, init_key)
    p = models.initialize(k_init, b.params, "torch_default")
    x = data_lib.sample_batch(k_data, images, 1, b.dataset)
    _, st = _apply(b, p, x, mask, collections=("features", "meco"))
    maps = st["features"]["maps"]
    total = 4.0 * _smallest_correlation_eigenvalue(maps[0])
    for i, f in enumerate(maps[1:]):
      # Blocks per stage: N cells, then a reduction before the next stage's cells.
      last_of_stage = i % (n + 1) == n - 1
      total = total + (2.0 if last_of_stage else 1.0) * _smallest_correlation_eigenvalue(f)
    for path, leaf in jax.tree_util.tree_flatten_with_path(st["meco"])[0]:
      hooks = _MECO_HOOKS[[q.key for q in path if isinstance(getattr(q, "key", None), str)][-1]]
      where = linear_regions.edge_op(path)
      on = 1.0 if where is None else mask[where]
      total = total + on * hooks * _smallest_correlation_eigenvalue(leaf)
    return total

  return fn


# --------------------------------------------------------------------------------------------
# VKDNW (CVPR 2025): the spectrum of an empirical Fisher information matrix.

def _cholesky_of_covariance(logits):
  """(b, k, k) lower-triangular L with L L^T = diag(p) - p p^T, p the softmax of ``logits``
  (b, k) smoothed as VKDNW's ``cholesky_covariance`` smooths it (p (1 - 0.05) + 0.05 / k),
  built as their code builds it (Tanabe and Sagae's closed form)."""
  k = logits.shape[1]
  alpha = 0.05
  prob = jax.nn.softmax(logits, axis=1) * (1 - alpha) + alpha / k
  q = (1.0 - jnp.cumsum(prob, axis=1)).at[:, -1].set(0.0)
  q_shift = jnp.roll(q, 1, axis=1).at[:, 0].set(1.0)
  d = jnp.sqrt(prob * q / q_shift)
  inv_q = jnp.where(q > 0, 1.0 / jnp.where(q > 0, q, 1.0), 0.0)  # their nan_to_num(-inf) -> 0
  low = -prob[:, :, None] * inv_q[:, None, :]
  eye = jnp.eye(k, dtype=logits.dtype)
  low = jnp.tril(low * (1 - eye) + eye)
  return low * d[:, None, :]


def _quantiles_of_active(ev_sorted, n_skip, qs):
  """Linear-interpolation quantiles (torch.quantile's) of ev_sorted[n_skip:] (ascending)."""
  n = ev_sorted.shape[0] - n_skip
  pos = n_skip + qs * (n - 1)
  lo = jnp.floor(pos).astype(jnp.int32)
  hi = jnp.minimum(lo + 1, ev_sorted.shape[0] - 1)
  return ev_sorted[lo] + (pos - lo) * (ev_sorted[hi] - ev_sorted[lo])


# The layers that hold parameters, and per parameter the map u with d y / d theta[0] = u along
# output channel 0 (zero elsewhere) for the layer's output y: the first entry of a kernel
# (HWIO or (in, out)) and of a scale or bias all belong to output channel 0.
_FIRST_ENTRY_LAYERS = (nn.Conv, nn.BatchNorm, nn.Dense)


def _first_entry_maps(layer, x) -> dict:
  """{parameter name: u (y.shape[:-1] + (1,))} for a Conv, BatchNorm or Dense called on x."""
  if isinstance(layer, nn.Conv):
    # The convolution with a one-hot kernel, on the layer's own strides and padding.
    kernel = jnp.zeros((*layer.kernel_size, x.shape[-1], 1), x.dtype)
    kernel = kernel.at[(0,) * kernel.ndim].set(1.0)
    strides = layer.strides or 1
    strides = (strides,) * (x.ndim - 2) if isinstance(strides, int) else tuple(strides)
    u = {"kernel": jax.lax.conv_general_dilated(
        x, kernel, strides, layer.padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))}
  elif isinstance(layer, nn.BatchNorm):
    # Flax's training-mode statistics (its fast variance) of channel 0.
    axes = tuple(range(x.ndim - 1))
    x0 = x[..., :1]
    mean = jnp.mean(x0, axes, keepdims=True)
    var = jnp.maximum(0.0, jnp.mean(jnp.square(x0), axes, keepdims=True) - jnp.square(mean))
    u = {"scale": (x0 - mean) * jax.lax.rsqrt(var + layer.epsilon), "bias": jnp.ones_like(x0)}
  else:
    u = {"kernel": x[..., :1], "bias": jnp.ones_like(x[..., :1])}
  return {n: u[n] for n in layer.variables["params"]}


def _parameter_layer(context):
  """The Conv, BatchNorm or Dense whose call a Flax method interceptor sees, else None."""
  layer = context.module
  call = context.method_name == "__call__" and isinstance(layer, _FIRST_ENTRY_LAYERS)
  return layer if call else None


def _output_shapes(b: Bench) -> dict:
  """{layer path: output shape} of every parameter layer of ``b``'s network on one image."""
  shapes = {}

  def record(next_fun, args, kwargs, context):
    y = next_fun(*args, **kwargs)
    if _parameter_layer(context) is not None:
      shapes[context.module.path] = y.shape
    return y

  x = jnp.zeros((1, b.image_size, b.image_size, b.in_channels))
  with nn.intercept_methods(record):
    jax.eval_shape(lambda: _apply(b, b.params, x, jnp.ones((space.NUM_EDGES, space.NUM_OPS))))
  return shapes


def first_entry_jacobian(b: Bench, p, xi, mask):
  """(classes, P) Jacobian of one image's logits (``xi`` (h, w, c) run alone, batch
  statistics) with respect to the first entry of each of ``p``'s P parameter tensors, in
  tree-flattening order. One backward pass per class (vmapped) through the activations only:
  a zero added to every parameter layer's output gives the cotangent g there, and d logit /
  d theta[0] = sum(g[..., 0] u) with u from ``_first_entry_maps``. No weight gradient is
  formed: a vjp with respect to the parameters would form all of them for one entry each, and
  vmapped over images or classes they become per-example weight gradients, whose XLA:CPU
  compile took 529 s at C=16, N=5.
  """
  shapes = _output_shapes(b)
  order = [(tuple(k.key for k in path[:-1]), path[-1].key)
           for path, _ in jax.tree_util.tree_flatten_with_path(p)[0]]

  def logits(eps):
    maps = {}

    def perturb(next_fun, args, kwargs, context):
      y = next_fun(*args, **kwargs)
      layer = _parameter_layer(context)
      if layer is None:
        return y
      maps[layer.path] = _first_entry_maps(layer, args[0])
      return y + eps[layer.path]

    with nn.intercept_methods(perturb):
      out = _apply(b, p, xi[None], mask)[0][0]
    return out, maps

  zeros = {path: jnp.zeros(shape, xi.dtype) for path, shape in shapes.items()}
  out, pull, maps = jax.vjp(logits, zeros, has_aux=True)

  def row(cotangent):
    g = pull(cotangent)[0]
    return jnp.stack([jnp.sum(g[path][..., :1] * maps[path][name]) for path, name in order])

  return jax.vmap(row)(jnp.eye(out.shape[0], dtype=out.dtype))


def vkdnw_fn(b: Bench, batch_size: int = 32, image_chunk: int = 4) -> Callable:
  """``fn(mask, data, key, init_key) -> (2,)``: VKDNW_single's order key and its entropy.

  Follows ``ondratybl/VKDNW`` NB201 code (``compute_vkdnw_score.py`` and ``tss_utils.py``):
  Kaiming-normal fan-in weights, a batch of ``batch_size`` N(0, 1) images (their default: no
  real input, batch 32; ``data`` is unused), BatchNorm on batch statistics (their network has no
  running statistics, so ``eval()`` still normalises by the batch). J (b, k, P) is the Jacobian
  of each image's logits, that image run alone, with respect to the first entry of each of the
  P parameter tensors of the standalone network; F = mean over images of (L J)^T (L J), with L
  the Cholesky factor of the smoothed softmax covariance of the whole batch's logits (their
  code multiplies by L, not L^T, and so does this). Eigenvalues of F, their deciles 0.1..0.9
  (torch.quantile's interpolation), normalised to sum 1: ``vkdnw_entropy`` = their entropy
  (nats, at most log 9). VKDNW_single ranks the tuple (number of parameter tensors, entropy);
  ``vkdnw`` = tensors + entropy / log 10 orders cells exactly as that tuple does (the fraction
  stays below 1). Tensors of operators the mask prunes are left out of P, as they are absent
  from the standalone network. Cost: batch_size x classes backward passes through the
  activations (``first_entry_jacobian``, ``image_chunk`` images at a time); at C=16, N=5 with
  10 classes on a 2-core CPU 65-73 s a cell after a 254 s compile (benchmarks/vkdnw_cost.py,
  benchmarks/RESULTS.md), so it is an extra proxy, not a search default. Precision: on one
  draw float32 agrees with float64 to about 1e-4 in the entropy; another draw of the images and
  weights moves it by a median 0.04 on the sample's best cells (benchmarks/RESULTS.md).
  """
  where = [linear_regions.edge_op(path)
           for path, _ in jax.tree_util.tree_flatten_with_path(b.params)[0]]
  qs = jnp.arange(1, 10, dtype=jnp.float32) / 10.0

  def fn(mask, data, key, init_key=None):
    del data
    k_data, k_init = _keys(key, init_key)
    p = models.initialize(k_init, b.params, "kaiming", "fan_in")
    x = jax.random.normal(k_data, (batch_size, b.image_size, b.image_size, b.in_channels))
    active = jnp.stack([jnp.asarray(1.0) if w is None else mask[w] for w in where])

    # image_chunk images at a time bounds the vmapped backward pass to image_chunk x classes
    # cotangent maps per layer (400 with 100 classes); other chunk sizes were not measured.
    jac = jax.lax.map(lambda xi: first_entry_jacobian(b, p, xi, mask), x,
                      batch_size=image_chunk)  # (b, k, P)
    a = _cholesky_of_covariance(_apply(b, p, x, mask)[0]) @ jac  # (b, k, P)
    # F = A^T A with A the stacked L J / sqrt(b), so F's eigenvalues, largest first, are A's
    # squared singular values, then zeros; pruned tensors have zero columns in A and so leave
    # the singular values unchanged. In float32 these match a float64 eigendecomposition of F
    # to 1e-7 in the entropy, where F's own eigendecomposition was 5e-4 off (squaring the
    # condition number loses the small eigenvalues the low deciles read).
    n_tensors, n_active = jac.shape[-1], jnp.sum(active)
    sv = jnp.linalg.svd(a.reshape(-1, n_tensors) / jnp.sqrt(batch_size), compute_uv=False)
    desc = jnp.zeros(n_tensors).at[: sv.shape[0]].set(sv ** 2)
    ev = jnp.sort(jnp.where(jnp.arange(n_tensors) < n_active, desc, -1.0))  # -1: skipped
    lam = _quantiles_of_active(ev, (n_tensors - n_active).astype(jnp.int32), qs)
    t = lam / (jnp.sum(jnp.abs(lam)) + 1e-10)
    entropy = -jnp.sum(t * jnp.log(t + 1e-10))
    out = jnp.stack([n_active + entropy / jnp.log(10.0), entropy])
    return jnp.where(jnp.isnan(out), -jnp.inf, out)

  return fn


# --------------------------------------------------------------------------------------------
# One vector of proxies per mask.

def proxy_fn(config: ml_collections.ConfigDict, names=PROXIES) -> Callable:
  """``fn(mask, data, key, init_key=None) -> (len(names),)`` float32, in the order of names.

  Each proxy (or group computed together) gets its own keys, folded from ``key`` and
  ``init_key`` by its group's fixed position in this function's table of builders (not by the
  order of ``names``), so a proxy's value does not depend on which others are asked for. ``data`` is (images, labels) when a label proxy is asked for.
  """
  from monas_jax.proxies import cost
  bad = [n for n in names if n not in PROXIES]
  if bad:
    raise ValueError(f"unknown proxy {bad[0]!r}; allowed: {', '.join(PROXIES)}")
  z = config.zc
  spec = data_lib.config_spec(config)
  b = bench(spec, z.channels, z.cells_per_stage)
  # FLOPs and params (an indicator, and lambda's cost) are the deployed network's.
  table = cost.cost_table(spec, config.network.channels, config.network.cells_per_stage)
  builders = {
      "az_nas": lambda: az_nas_fn(b, z.batch_size),
      "naswot": lambda: naswot_fn(b, z.batch_size),
      "synflow": lambda: synflow_fn(b),
      "gradients": lambda: gradients_fn(b, z.batch_size),
      "jacov": lambda: jacov_fn(b, z.batch_size),
      "zico": lambda: zico_fn(b, z.batch_size),
      "meco": lambda: meco_fn(b),
      "meco_modules": lambda: meco_modules_fn(b),
      "vkdnw": lambda: vkdnw_fn(b),
  }
  group_of = {n: g for g, members in GROUPS.items() for n in members}
  needed = []
  for n in names:
    g = group_of.get(n, n)
    if g in builders and g not in needed:
      needed.append(g)
  fns = {g: builders[g]() for g in needed}

  def fn(mask, data, key, init_key=None):
    k_data, k_init = _keys(key, init_key)
    vals = {}
    for g, f in fns.items():
      salt = list(builders).index(g)
      out = f(mask, data, jax.random.fold_in(k_data, salt), jax.random.fold_in(k_init, salt))
      if g in GROUPS:
        vals.update({m: out[i] for i, m in enumerate(GROUPS[g])})
      else:
        vals[g] = out
    vals["flops"] = table.flops_M(mask)
    vals["params"] = table.params_M(mask)
    return jnp.stack([jnp.asarray(vals[n], jnp.float32) for n in names])

  return fn
