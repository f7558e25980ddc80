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


def parse_flags(argv, flag_values=None):
  """absl's flag parser for ``app.run(main, flags_parser=cli.parse_flags)``: a bad flag value
  (e.g. a config variant its file refuses, ``--config=configs/cifar10.py:nope``) or a config
  file that does not load ends the command in one line naming the flag or file and the reason,
  not in absl's embedded traceback. ``flag_values`` defaults to ``absl.flags.FLAGS``."""
  from absl import flags
  try:
    return (flag_values or flags.FLAGS)(argv)
  except flags.Error as e:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    head = lines[0].split(": Error whilst")[0].rstrip(":") if lines else "bad flag"
    fail(head if len(lines) < 2 else f"{head}: {lines[-1]}")
  except (AttributeError, KeyError) as e:  # ml_collections: an override of a field that is not there
    if "get_config" in str(e):  # the --config file loaded but is some other kind of file
      fail(f"--config {_config_arg(argv)}: not a config file ({CONFIG_FILE})")
    field = str(e).strip("\"' ")
    bad = [a.split("=")[0] for a in argv[1:] if a.startswith("--") and "." in a.split("=")[0]
           and field in a.split("=")[0].split(".")]
    fail(f"{bad[0] if bad else 'a --config override'}: the config has no field {field!r} "
         "(see the config file, or --helpfull)")
  except Exception as e:  # noqa: BLE001  the config file itself fails to import
    path = _config_arg(argv)
    if path is None:
      raise
    reason = " ".join(f"{type(e).__name__}: {e}".split())
    fail(f"--config {path}: cannot load it ({reason}); expected {CONFIG_FILE}")


CONFIG_FILE = "a Python file defining get_config(), like configs/cifar10.py"


def _config_arg(argv):
  """The file of the last ``--config=FILE[:variant]`` in ``argv``, or None."""
  paths = [a.split("=", 1)[1] if a.startswith("--config=") else b
           for a, b in zip(argv[1:], list(argv[2:]) + [""]) if a.startswith("--config=")
           or a == "--config"]
  return paths[-1].split(":")[0] if paths else None


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


# ---------------------------------------------------------------- runtime: cache, multi-host

CACHE_ENV = "MONAS_JAX_COMPILATION_CACHE"
_CACHE_EVENTS = {"/jax/compilation_cache/compile_requests_use_cache": "requests",
                 "/jax/compilation_cache/cache_hits": "hits"}
_cache_counts = {"requests": 0, "hits": 0}
_listening = False


def default_cache_dir() -> str:
  """$XDG_CACHE_HOME/monas_jax/jax_cache, or ~/.cache/monas_jax/jax_cache."""
  import os
  root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
  return os.path.join(root, "monas_jax", "jax_cache")


def cache_dir_for(config):
  """The persistent compilation cache directory a config asks for, or None (disabled).

  ``runtime.compilation_cache = False`` disables; ``runtime.compilation_cache_dir`` names the
  directory; else $MONAS_JAX_COMPILATION_CACHE (a directory, or 'off'/'0'/'' to disable); else
  default_cache_dir().
  """
  import os
  r = config.get("runtime")
  if r is not None and not r.compilation_cache:
    return None
  if r is not None and r.compilation_cache_dir is not None:
    return os.path.abspath(os.path.expanduser(str(r.compilation_cache_dir)))
  env = os.environ.get(CACHE_ENV)
  if env is not None:
    if env.strip().lower() in ("", "0", "off", "false", "none"):
      return None
    return os.path.abspath(os.path.expanduser(env))
  return default_cache_dir()


def _count_cache_event(event: str, **kwargs) -> None:
  del kwargs
  name = _CACHE_EVENTS.get(event)
  if name:
    _cache_counts[name] += 1


def enable_compilation_cache(path) -> None:
  """Turns JAX's persistent compilation cache on in ``path`` (off when None), caching every
  compile (CPU compiles are short, and JAX by default keeps only those over 1 s)."""
  global _listening
  import jax
  from jax.experimental.compilation_cache import compilation_cache as cc
  if path is None:
    jax.config.update("jax_enable_compilation_cache", False)
  else:
    import os
    os.makedirs(path, exist_ok=True)
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", path)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
  from jax._src import compilation_cache as _cc
  if getattr(_cc, "_cache_checked", True):
    # JAX decides at the first compile whether to use the cache; after one, decide again.
    cc.reset_cache()
  if not _listening:
    jax.monitoring.register_event_listener(_count_cache_event)
    _listening = True


def compilation_cache_info() -> dict:
  """Whether the persistent compilation cache is on, its directory, and the compiles that asked
  it (``requests``) and were served from it (``hits``) so far in this process."""
  import jax
  on = bool(jax.config.jax_enable_compilation_cache) and bool(jax.config.jax_compilation_cache_dir)
  return {"enabled": on, "dir": jax.config.jax_compilation_cache_dir if on else None,
          **_cache_counts}


def init_distributed(config, echo=print) -> None:
  """jax.distributed.initialize() when ``runtime.distributed`` (before any compute).

  The three fields given: a coordinator on ``coordinator_address`` (process 0 serves it);
  all None: JAX auto-detects the cluster (Cloud TPU pods, Slurm, Open MPI, Kubernetes). When
  more than one process runs and the config leaves ``num_shards`` at 1, each process takes
  the score_space shard of its process index (shard_index = process index, num_shards =
  process count); every process writes its own records in the shared workdir and any process
  run again afterwards reports on all of them.
  """
  r = config.get("runtime")
  if r is None or not r.distributed:
    return
  import jax
  kwargs = {}
  if r.coordinator_address is not None:
    addr = str(r.coordinator_address)
    kwargs = {"coordinator_address": addr, "num_processes": int(r.num_processes),
              "process_id": int(r.process_id)}
    if addr.rpartition(":")[0].strip("[]") in ("127.0.0.1", "localhost", "::1"):
      kwargs["coordinator_bind_address"] = addr  # one machine: serve on loopback only
  jax.distributed.initialize(**kwargs)
  n, i = jax.process_count(), jax.process_index()
  if n > 1 and config.get("num_shards", None) == 1:
    config.shard_index, config.num_shards = i, n
  echo(f"distributed: process {i} of {n}, {jax.local_device_count()} local device(s), "
       f"{jax.device_count()} in all")


def setup_runtime(config, echo=print) -> dict:
  """Applies ``config.runtime``: multi-host initialisation first, then the persistent
  compilation cache. Commands call it right after validation. Returns compilation_cache_info()."""
  run_or_exit(config_lib.validate_runtime, config)
  init_distributed(config, echo)
  enable_compilation_cache(cache_dir_for(config))
  return compilation_cache_info()
