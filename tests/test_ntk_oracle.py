"""Our empirical NTK against neural-tangents 0.6.5 (fixtures written by oracle/make_ntk_fixtures.py).

neural-tangents cannot be imported with JAX >= 0.6, so its kernels were computed in a pinned
environment (oracle/README.md) and stored as float64 in tests/fixtures/ntk/*.npz. The comparison
runs in float64 so that rtol 1e-5 measures our formula, not float32 round-off.
"""
from __future__ import annotations

import importlib.util
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from monas_jax.proxies import ntk

ROOT = pathlib.Path(__file__).resolve().parents[1]
FIXTURES = sorted((ROOT / 'tests' / 'fixtures' / 'ntk').glob('*.npz'))


def _load_nets():
  # oracle/ is not a package; import the shared net definitions by path.
  spec = importlib.util.spec_from_file_location('ntk_nets', ROOT / 'oracle' / 'ntk_nets.py')
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


ntk_nets = _load_nets()


def _leaf_name(path) -> str:
  return '/'.join(['params'] + [str(k.key) for k in path])


def _load(path: pathlib.Path):
  """Fixture -> (net, params as numpy float64 nested dict, x (n, 8, 8, 3), data)."""
  data = dict(np.load(path, allow_pickle=False))
  net = ntk_nets.NETS[str(data['net'])]
  params = ntk_nets.unflatten_params({k: v for k, v in data.items() if k.startswith('params/')})
  return net, params, data['x'], data


def test_fixtures_present():
  names = {p.stem for p in FIXTURES}
  assert {'conv_bn', 'conv_bn_subset', 'res_bn', 'res_bn_subset', 'mlp', 'mlp_subset'} <= names


@pytest.mark.parametrize('path', FIXTURES, ids=lambda p: p.stem)
def test_empirical_ntk_matches_neural_tangents(path):
  net, params, x, data = _load(path)
  assert str(data['nt_version']) == '0.6.5'
  assert data['ntk'].dtype == np.float64 and data['ntk'].shape == (x.shape[0],) * 2
  included = set(data['included'].tolist())
  picked = []

  def param_filter(p, leaf):
    del leaf
    picked.append(_leaf_name(p))
    return _leaf_name(p) in included

  all_leaves = str(data['variant']) == 'all'
  with jax.enable_x64(True):
    p64 = jax.tree_util.tree_map(jnp.asarray, params)
    ours = ntk.empirical_ntk(net.apply, p64, jnp.asarray(x), None if all_leaves else param_filter)
    ours = np.asarray(ours)
  assert ours.dtype == np.float64
  if not all_leaves:
    # The filter saw every leaf, and the fixture's subset names real leaves.
    assert sorted(picked) == sorted(ntk_nets.flatten_params(params))
    assert included < set(picked)
  oracle = data['ntk']
  np.testing.assert_allclose(ours, oracle, rtol=1e-5, atol=1e-9 * np.abs(oracle).max())
  if ntk_nets.BATCH_COUPLED[str(data['net'])]:
    # Under training-mode BatchNorm a per-image (vmapped) kernel is a different quantity; the
    # fixture's negative control must be far from ours, else the test would not see the coupling.
    gap = np.abs(ours - data['ntk_per_image']).max() / np.abs(oracle).max()
    assert gap > 1e-3


@pytest.mark.skipif(not hasattr(ntk, 'weights_only'), reason='ntk.weights_only not defined')
@pytest.mark.parametrize('name', ['conv_bn_subset', 'res_bn_subset', 'mlp_subset'])
def test_weights_only_filter_is_the_subset(name):
  # The subset fixtures hold conv/dense kernels and BN scales: the reference code's weight set.
  net, params, x, data = _load(ROOT / 'tests' / 'fixtures' / 'ntk' / f'{name}.npz')
  with jax.enable_x64(True):
    p64 = jax.tree_util.tree_map(jnp.asarray, params)
    ours = np.asarray(ntk.empirical_ntk(net.apply, p64, jnp.asarray(x), ntk.weights_only))
  np.testing.assert_allclose(ours, data['ntk'], rtol=1e-5, atol=1e-9 * np.abs(data['ntk']).max())
