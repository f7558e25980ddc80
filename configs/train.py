r"""Training a cell's C=16, N=5 network (NAS-Bench-201 recipe), and the config of export.

Run:  python -m experiments.train --arch='|nor_conv_3x3~0|+|...|' --config.train.epochs=1
Another dataset:  --config=configs/train.py:cifar100 --config.data_dir=/data/cifar100
Override any field:  --config.train.batch_size=128 --config.train.learning_rate=0.05
Without --config.data_dir it trains on the bundled CIFAR-10 sample (80 %) and evaluates on the
held-out rest (20 %), and says so.
"""
from monas_jax import data
from monas_jax.train import default_config


def get_config(arg=None):
  name = arg or "cifar10"
  # An unknown dataset is kept and reported by train.validate_config (one line, exit 2): raising
  # here would end in absl's flag-parsing traceback.
  c = default_config(name if name in data.DATASETS else "cifar10")
  with c.unlocked():
    c.dataset = name
  return c
