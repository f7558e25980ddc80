r"""MONAS search on cifar100.

Run:  python -m experiments.search --config=configs/cifar100.py --workdir=runs/cifar100
Tiny variant for tests:  --config=configs/cifar100.py:smoke
Override any field:  --config.search.latency_weight=0.8 --config.data_dir=/data/cifar100
"""
from monas_jax.config import make_config


def get_config(arg=None):
  return make_config("cifar100", arg)
