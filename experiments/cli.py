"""What every command does with bad input: one line on stderr naming the problem, exit 2."""
import sys

from monas_jax import config as config_lib


def fail(message: str):
  """Ends the command: ``error: message`` on stderr (one line), exit status 2."""
  print(f"error: {' '.join(str(message).split())}", file=sys.stderr)
  sys.exit(2)


def run_or_exit(fn, *args, **kwargs):
  """Calls fn; a ValueError (bad config, budget, arch) or a missing file ends the command."""
  try:
    return fn(*args, **kwargs)
  except (ValueError, FileNotFoundError) as e:
    fail(str(e))


def _config_load_error(e: OSError) -> str:
  """One line out of ml_collections' multi-line 'failed to load the config file' report."""
  cause = e.__cause__ if e.__cause__ is not None else e
  lines = [ln.strip() for ln in str(cause).splitlines() if ln.strip()]
  # The last line is the reason of the last attempt, e.g. "[Errno 2] No such file or directory:
  # 'configs/nope.py'"; the first names the flag.
  reason = lines[-1] if lines else type(cause).__name__
  return f"cannot load --config: {reason}"


def validated(config, validate=None, **kwargs):
  """The config after validation, or exit 2 with the field, value and what is allowed.

  ``validate`` defaults to ``config.validate`` (the search's fields); commands with their own
  config (training, export) pass theirs. A config file that could not be loaded (missing, or
  raising on import) reaches here as an object that raises OSError on first access: that ends
  the command in one line too, instead of a traceback.
  """
  validate = validate or config_lib.validate
  try:
    return run_or_exit(validate, config, **kwargs)
  except OSError as e:
    fail(_config_load_error(e))
