"""Small pure-JAX networks shared by the neural-tangents oracle and its test.

Only ``jax.numpy`` / ``jax.lax`` / ``jax.random`` are used (no Flax) so this file imports both in
the oracle's pinned old-JAX environment and in the main environment (JAX 0.10).

Each net exposes ``init(key, dtype) -> params`` (a nested dict of arrays) and
``apply(params, x) -> logits (n, k)``, with ``x`` NHWC of shape ``(n, 8, 8, 3)``. BatchNorm is
training-mode (batch statistics), so the logits of one image depend on the whole batch.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax

IN_SHAPE = (8, 8, 3)  # H, W, C of one image.
BN_EPS = 1e-5


def _normal(key, shape, std, dtype):
  return std * jax.random.normal(key, shape, dtype)


def _conv_params(key, cin, cout, dtype):
  k1, k2 = jax.random.split(key)
  return {'kernel': _normal(k1, (3, 3, cin, cout), (9 * cin) ** -0.5, dtype),
          'bias': _normal(k2, (cout,), 0.1, dtype)}


def _bn_params(key, c, dtype):
  # Non-trivial scale/shift so that their derivatives are exercised, not only the identity.
  k1, k2 = jax.random.split(key)
  return {'scale': 1.0 + _normal(k1, (c,), 0.2, dtype), 'bias': _normal(k2, (c,), 0.2, dtype)}


def _dense_params(key, din, dout, dtype):
  k1, k2 = jax.random.split(key)
  return {'kernel': _normal(k1, (din, dout), din ** -0.5, dtype),
          'bias': _normal(k2, (dout,), 0.1, dtype)}


def conv3x3(p, x):
  """3x3 SAME convolution, stride 1: (n, h, w, cin) -> (n, h, w, cout)."""
  y = lax.conv_general_dilated(x, p['kernel'], window_strides=(1, 1), padding='SAME',
                               dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
  return y + p['bias']


def batch_norm(p, x):
  """Training-mode BatchNorm over (n, h, w): batch mean, biased variance, eps 1e-5."""
  mean = jnp.mean(x, axis=(0, 1, 2))
  var = jnp.mean(jnp.square(x - mean), axis=(0, 1, 2))
  return (x - mean) * lax.rsqrt(var + BN_EPS) * p['scale'] + p['bias']


def dense(p, x):
  return x @ p['kernel'] + p['bias']


class ConvBN:
  """conv3x3 -> BatchNorm -> ReLU -> global average pool -> dense."""
  width, classes = 4, 5

  @classmethod
  def init(cls, key, dtype=jnp.float32):
    k1, k2, k3 = jax.random.split(key, 3)
    return {'conv': _conv_params(k1, IN_SHAPE[-1], cls.width, dtype),
            'bn': _bn_params(k2, cls.width, dtype),
            'dense': _dense_params(k3, cls.width, cls.classes, dtype)}

  @staticmethod
  def apply(params, x):
    h = jax.nn.relu(batch_norm(params['bn'], conv3x3(params['conv'], x)))
    return dense(params['dense'], jnp.mean(h, axis=(1, 2)))


class ResBN:
  """conv_a -> BN -> ReLU = h; conv_b(h) -> BN; ReLU(h + that) -> pool -> dense."""
  width, classes = 4, 3

  @classmethod
  def init(cls, key, dtype=jnp.float32):
    k = jax.random.split(key, 5)
    return {'conv_a': _conv_params(k[0], IN_SHAPE[-1], cls.width, dtype),
            'bn_a': _bn_params(k[1], cls.width, dtype),
            'conv_b': _conv_params(k[2], cls.width, cls.width, dtype),
            'bn_b': _bn_params(k[3], cls.width, dtype),
            'dense': _dense_params(k[4], cls.width, cls.classes, dtype)}

  @staticmethod
  def apply(params, x):
    h = jax.nn.relu(batch_norm(params['bn_a'], conv3x3(params['conv_a'], x)))
    r = batch_norm(params['bn_b'], conv3x3(params['conv_b'], h))
    h = jax.nn.relu(h + r)
    return dense(params['dense'], jnp.mean(h, axis=(1, 2)))


class MLP:
  """flatten -> dense 16 -> tanh -> dense 16 -> ReLU -> dense 4; images do not interact."""
  hidden, classes = 16, 4

  @classmethod
  def init(cls, key, dtype=jnp.float32):
    k = jax.random.split(key, 3)
    din = IN_SHAPE[0] * IN_SHAPE[1] * IN_SHAPE[2]
    return {'dense_0': _dense_params(k[0], din, cls.hidden, dtype),
            'dense_1': _dense_params(k[1], cls.hidden, cls.hidden, dtype),
            'dense_2': _dense_params(k[2], cls.hidden, cls.classes, dtype)}

  @staticmethod
  def apply(params, x):
    h = jnp.tanh(dense(params['dense_0'], x.reshape(x.shape[0], -1)))
    h = jax.nn.relu(dense(params['dense_1'], h))
    return dense(params['dense_2'], h)


NETS = {'conv_bn': ConvBN, 'res_bn': ResBN, 'mlp': MLP}
# Whether the batch is coupled (training-mode BatchNorm): a per-image kernel is then wrong.
BATCH_COUPLED = {'conv_bn': True, 'res_bn': True, 'mlp': False}
BATCH = {'conv_bn': 8, 'res_bn': 6, 'mlp': 5}


def flatten_params(params, prefix='params'):
  """Nested dict -> {'params/a/b': array}."""
  out = {}
  for k, v in params.items():
    name = f'{prefix}/{k}'
    if isinstance(v, dict):
      out.update(flatten_params(v, name))
    else:
      out[name] = v
  return out


def unflatten_params(flat, prefix='params'):
  """{'params/a/b': array} -> nested dict; keys without the prefix are ignored."""
  out = {}
  for name, v in flat.items():
    parts = name.split('/')
    if parts[0] != prefix:
      continue
    node = out
    for p in parts[1:-1]:
      node = node.setdefault(p, {})
    node[parts[-1]] = v
  return out


def subset_names(params):
  """The leaves of the subset variant: conv/dense kernels and BN scales (no biases/shifts)."""
  return sorted(n for n in flatten_params(params)
                if n.endswith('/kernel') or n.endswith('/scale'))
