r"""Describe cells: benchmark accuracies, FLOPs, params, memory and latency, one JSON per line.

  python -m experiments.describe --config=configs/cifar10.py \
      --arch='|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|'
  python -m experiments.describe --config=configs/cifar10.py --arch_file=cells.txt
"""
import json
import sys

from absl import app, flags
from ml_collections import config_flags

from experiments import cli
from monas_jax import data, space
from monas_jax.describe import describe_cells


def read_archs(archs, arch_file):
  """Parses every arch first, so a bad one fails before any output. Returns [Arch]."""
  items = [(f"--arch #{i + 1}", s) for i, s in enumerate(archs)]
  if arch_file:
    try:
      with open(arch_file, encoding="utf-8") as f:
        items += [(f"{arch_file}:{n}", line.strip()) for n, line in enumerate(f, 1)
                  if line.strip() and not line.lstrip().startswith("#")]
    except OSError as e:
      raise ValueError(f"cannot read --arch_file: {e}") from e
    except UnicodeDecodeError as e:
      raise ValueError(f"{arch_file}: not a text file of arch strings, one a line ({e})") from None
  if not items:
    raise ValueError("give at least one --arch or an --arch_file")
  out = []
  for where, s in items:
    try:
      out.append(space.Arch.from_string(s))
    except ValueError as e:
      raise ValueError(f"{where}: {e}") from None
  return out


def input_spec(config) -> data.DataSpec:
  """The input of the config's network: known for NAS-Bench-201's datasets at their own sizes;
  otherwise (a user's folder, another size or channels) its images are read for the classes
  and statistics."""
  try:
    return data.config_spec(config)
  except ValueError:
    return data.read_config_images(config).spec


def main(argv):
  del argv
  # describe reads no images, so ImageNet16-120 needs no data_dir here.
  config = cli.validated(flags.FLAGS.config, needs_images=False)
  archs = cli.run_or_exit(read_archs, flags.FLAGS.arch, flags.FLAGS.arch_file)
  spec = cli.run_or_exit(input_spec, config)
  out = sys.stdout
  for rec in describe_cells(archs, spec, config.network.channels, config.network.cells_per_stage):
    out.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
  # Flags are defined only when run as a command, so tests and other commands can import.
  config_flags.DEFINE_config_file("config", "configs/cifar10.py", "Config file.")
  flags.DEFINE_multi_string("arch", [], "Arch string (repeatable).")
  flags.DEFINE_string("arch_file", None, "File with one arch string per line.")
  app.run(main, flags_parser=cli.parse_flags)
