r"""MONAS search on imagenet16_120.

Run:  python -m experiments.search --config=configs/imagenet16_120.py --workdir=runs/imagenet16_120
Tiny variant for tests:  --config=configs/imagenet16_120.py:smoke
Override any field:  --config.search.latency_weight=0.8 --config.data_dir=/data/imagenet16_120
"""
from monas_jax.config import make_config


def get_config(arg=None):
  return make_config("imagenet16_120", arg)
