r"""MONAS search on your own images: an image folder or a .npz archive.

Run:  python -m experiments.search --config=configs/folder.py --config.data_dir=DIR
  DIR/train/<class>/*.png|jpg|jpeg|bmp and DIR/test/<class>/... (or DIR/val/<class>/...), any
  sizes, RGB or grayscale; or --config.data_dir=data.npz holding x_train, y_train, x_test, y_test.
Your size and network:  --config.image_size=48 --config.image_channels=1
  --config.network.channels=8 --config.network.cells_per_stage=3
Normalisation statistics are computed from the training split unless given:
  --config.norm_mean="(0.49,0.48,0.45)" --config.norm_std="(0.25,0.24,0.26)"
Tiny variant for tests:  --config=configs/folder.py:smoke
A folder to try it on:  python benchmarks/make_image_folder.py --out=/tmp/c10-folder
"""
from monas_jax.config import make_config


def get_config(arg=None):
  return make_config("folder", arg)
