"""Writes neural-tangents empirical-NTK fixtures to tests/fixtures/ntk/<name>.npz.

Runs only in the pinned oracle environment (see oracle/README.md): neural-tangents 0.6.5 does not
import under JAX >= 0.6. Everything is float64 so that the test can compare at rtol 1e-5 without
float32 round-off entering the comparison.

Each fixture holds:
  x: (n, 8, 8, 3) float64 inputs.
  params/<layer>/<leaf>: every parameter of the net, float64.
  ntk: (n, n) float64, nt's kernel of the class-summed logits (the (n, n, k, k) kernel with
    trace_axes=() summed over both class axes).
  ntk_per_image: (n, n), the same kernel with vmap_axes=0, i.e. each image forwarded alone; for
    BatchNorm nets it is a negative control (it differs from ntk), for the MLP it equals ntk.
  included: names of the differentiated leaves (all of them, or the subset variant's).
  net, variant, implementation, seed, nt_version, jax_version, jaxlib_version: metadata.
"""
from __future__ import annotations

import os
import sys

import jax

jax.config.update('jax_enable_x64', True)

import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
import jaxlib
import neural_tangents as nt
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ntk_nets  # pylint: disable=g-import-not-at-top

OUT_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       'tests', 'fixtures', 'ntk')
SEEDS = {'conv_bn': 0, 'res_bn': 1, 'mlp': 2}
# Reference implementation: full Jacobians by reverse mode, contracted. The other two are only a
# cross-check that nt agrees with itself.
REFERENCE_IMPL = nt.NtkImplementation.JACOBIAN_CONTRACTION
CHECK_IMPLS = (nt.NtkImplementation.NTK_VECTOR_PRODUCTS,
               nt.NtkImplementation.STRUCTURED_DERIVATIVES)


def split_params(params, names):
  """Nested params -> (selected nested dict, rest nested dict) by flat leaf names."""
  flat = ntk_nets.flatten_params(params)
  sel = {k: v for k, v in flat.items() if k in names}
  rest = {k: v for k, v in flat.items() if k not in names}
  return ntk_nets.unflatten_params(sel), ntk_nets.unflatten_params(rest)


def merge_params(sel, rest):
  flat = dict(ntk_nets.flatten_params(rest))
  flat.update(ntk_nets.flatten_params(sel))
  return ntk_nets.unflatten_params(flat)


def class_summed_ntk(apply, x, params, implementation, vmap_axes):
  """nt kernel (n, n, k, k) with nothing traced, summed over both class axes -> (n, n)."""
  fn = nt.empirical_ntk_fn(apply, trace_axes=(), vmap_axes=vmap_axes,
                           implementation=implementation)
  k = fn(x, None, params)
  assert k.ndim == 4 and k.shape[0] == k.shape[1] == x.shape[0], k.shape
  return np.asarray(jnp.sum(k, axis=(2, 3)))


def make(name, variant):
  net = ntk_nets.NETS[name]
  kp, kx = jax.random.split(jax.random.PRNGKey(SEEDS[name]))
  params = net.init(kp, jnp.float64)
  n = ntk_nets.BATCH[name]
  x = jax.random.normal(kx, (n,) + ntk_nets.IN_SHAPE, jnp.float64)

  all_names = sorted(ntk_nets.flatten_params(params))
  names = all_names if variant == 'all' else ntk_nets.subset_names(params)
  sel, rest = split_params(params, names)

  # Differentiating w.r.t. a subset: nt sees only `sel`, the rest is closed over as constants.
  def apply_sel(s, xx):
    return net.apply(merge_params(s, rest), xx)

  # vmap_axes=None: nt differentiates the batched forward pass as a whole (its docs require None
  # when batch elements interact, e.g. BatchNorm).
  ntk = class_summed_ntk(apply_sel, x, sel, REFERENCE_IMPL, None)
  for impl in CHECK_IMPLS:
    other = class_summed_ntk(apply_sel, x, sel, impl, None)
    np.testing.assert_allclose(other, ntk, rtol=1e-9, atol=1e-12 * np.abs(ntk).max(),
                               err_msg=f'{name}/{variant}: nt impl {impl!r} disagrees')
  per_image = class_summed_ntk(apply_sel, x, sel, REFERENCE_IMPL, 0)
  gap = np.abs(per_image - ntk).max() / np.abs(ntk).max()
  if ntk_nets.BATCH_COUPLED[name]:
    assert gap > 1e-3, f'{name}: per-image kernel should differ under BatchNorm, gap {gap}'
  else:
    assert gap < 1e-12, f'{name}: per-image kernel should match without BatchNorm, gap {gap}'

  out = {'x': np.asarray(x), 'ntk': ntk, 'ntk_per_image': per_image,
         'included': np.array(names), 'net': np.array(name), 'variant': np.array(variant),
         'implementation': np.array(REFERENCE_IMPL.name), 'seed': np.array(SEEDS[name]),
         'nt_version': np.array(nt.__version__), 'jax_version': np.array(jax.__version__),
         'jaxlib_version': np.array(jaxlib.__version__)}
  out.update({k: np.asarray(v) for k, v in ntk_nets.flatten_params(params).items()})
  assert all(v.dtype != object for v in out.values())
  path = os.path.join(OUT_DIR, f'{name}{"" if variant == "all" else "_" + variant}.npz')
  np.savez_compressed(path, **out)
  print(f'{path}: n={n} leaves={len(names)}/{len(all_names)} '
        f'max|ntk|={np.abs(ntk).max():.4g} per-image gap={gap:.3g}')


def main():
  os.makedirs(OUT_DIR, exist_ok=True)
  for name in ntk_nets.NETS:
    for variant in ('all', 'subset'):
      make(name, variant)


if __name__ == '__main__':
  main()
