r"""MONAS search on cifar10.

Run:  python -m experiments.search --config=configs/cifar10.py --workdir=runs/cifar10
Tiny variant for tests:  --config=configs/cifar10.py:smoke
Override any field:  --config.search.latency_weight=0.8 --config.data_dir=/data/cifar10
"""
from monas_jax.config import make_config


def get_config(arg=None):
  return make_config("cifar10", arg)
