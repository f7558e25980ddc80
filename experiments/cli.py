"""What every command does with bad input: one line on stderr naming the problem, exit 2."""
import sys

from monas_jax import config as config_lib


def run_or_exit(fn, *args, **kwargs):
  """Calls fn; a ValueError (bad config, budget, arch) or a missing file ends the command."""
  try:
    return fn(*args, **kwargs)
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


def validated(config):
  """The config after validation, or exit 2 with the field, value and what is allowed."""
  return run_or_exit(config_lib.validate, config)
