"""The `beam:` config section: the Apache Beam runner of ExampleGen and DataValidator and its
pipeline options, checked when the config loads.

    beam:
      runner: DaskRunner                         # default DirectRunner
      options: {dask_client_address: 127.0.0.1:8786}

`runner` is a runner name Beam knows (DirectRunner, FlinkRunner, SparkRunner, DataflowRunner,
PrismRunner, ...), `DaskRunner`, or the dotted path of a `PipelineRunner` subclass. `options`
maps Beam pipeline option names (the `--flag` names, without the dashes) to values; each is
checked against Beam's own definition of that flag (known name, type, choices). With no
options the DirectRunner runs `in_memory` with one worker; another `direct_running_mode`
gets 2 workers unless `direct_num_workers` says otherwise. The DaskRunner gets
`dask_npartitions: 8` unless a partitioning is set (Beam's default, 128 items a partition,
puts most configs' items in one partition: one worker). A `dask_client_address` must answer
a TCP connection when the config loads.

The environment overrides the file: `KERAS_AR_BEAM_RUNNER` (the runner) and
`KERAS_AR_BEAM_RUNNING_MODE` (`direct_running_mode`). The runner is in no cache key: every
runner writes the same bytes (see `pipelines.components.beam_pipeline`).
"""

import dataclasses
import difflib
import os
import socket
import urllib.parse

from pipelines.config import ConfigError

DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"
DEFAULT_DASK_PARTITIONS = 8
PROBE_SECONDS = 3.0


def settings(beam):
    """The runner and options to run with: `beam` (a `BeamConfig` or its dict) with the
    environment's overrides and this project's defaults applied."""
    beam = dataclasses.asdict(beam) if dataclasses.is_dataclass(beam) else dict(beam or {})
    runner = os.environ.get("KERAS_AR_BEAM_RUNNER") or beam.get("runner") or "DirectRunner"
    options = dict(beam.get("options") or {})
    if os.environ.get("KERAS_AR_BEAM_RUNNING_MODE"):
        options["direct_running_mode"] = os.environ["KERAS_AR_BEAM_RUNNING_MODE"]
    if _short(runner) == "DirectRunner":
        options.setdefault("direct_running_mode", "in_memory")
        mode = options["direct_running_mode"]
        options.setdefault("direct_num_workers", 1 if mode == "in_memory" else 2)
    if runner_path(runner) == DASK_RUNNER and not {"dask_npartitions",
                                                  "dask_partition_size"} & set(options):
        options["dask_npartitions"] = DEFAULT_DASK_PARTITIONS
    return {"runner": runner, "options": options}


def runner_path(name):
    """A runner name -> the dotted path Beam imports; None when `name` is unknown."""
    from apache_beam.options.pipeline_options import StandardOptions

    known = {p.rsplit(".", 1)[-1]: p for p in StandardOptions.ALL_KNOWN_RUNNERS}
    known["DaskRunner"] = DASK_RUNNER
    if name in known:
        return known[name]
    if "." in name:
        module, _, cls = name.rpartition(".")
        try:
            import importlib

            from apache_beam.runners.runner import PipelineRunner

            found = getattr(importlib.import_module(module), cls)
            return name if isinstance(found, type) and issubclass(found, PipelineRunner) \
                else None
        except (ImportError, AttributeError, ValueError):
            return None
    return None


def check(beam, where):
    """ConfigError (naming the key, the value and the fix) unless the effective runner and
    options (`settings(beam)`) are usable; a Dask address must answer."""
    effective = settings(beam)
    runner, options = effective["runner"], effective["options"]
    path = runner_path(runner)
    if path is None:
        names = _runner_names()
        close = difflib.get_close_matches(runner, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(
            f"{where}: `beam.runner` = {runner!r} is unknown"
            f"{_overridden('KERAS_AR_BEAM_RUNNER')}; expected one of {names} or the dotted "
            f"path of a PipelineRunner subclass{hint}.")
    flags(effective, where)
    if path == DASK_RUNNER:
        _probe_dask(options, where)


def flags(effective, where="<config>"):
    """`--name=value` command-line flags for Beam from `effective["options"]`, each checked
    against Beam's definition of that flag (ConfigError naming the option otherwise)."""
    actions = _option_actions(runner_path(effective["runner"]) or "")
    out = []
    for name, value in sorted(effective["options"].items()):
        key = f"beam.options.{name}"
        if name == "runner":
            raise ConfigError(f"{where}: `{key}` is not an option here; set `beam.runner`.")
        action = actions.get(name)
        if action is None:
            close = difflib.get_close_matches(name, sorted(actions), n=3)
            raise ConfigError(
                f"{where}: `{key}` = {value!r}: Beam has no pipeline option {name!r}"
                f"{f'; close: {close}' if close else ''}. Options are Beam's --flag names "
                "without the dashes (e.g. direct_num_workers, dask_client_address).")
        out += _flag(name, value, action, key, where)
    return out


def pipeline_options(effective):
    """Beam `PipelineOptions` for `settings(...)`'s result (the runner as its dotted path)."""
    from apache_beam.options.pipeline_options import PipelineOptions

    return PipelineOptions(
        flags=[f"--runner={runner_path(effective['runner'])}"] + flags(effective))


def _flag(name, value, action, key, where):
    def fail(expected):
        raise ConfigError(f"{where}: `{key}` = {value!r} ({type(value).__name__}) is invalid; "
                          f"expected {expected}.")

    if action.nargs == 0:  # a switch: true/false in the file
        if not isinstance(value, bool):
            fail("true or false (a switch)")
        return [f"--{name}"] if value == action.const else []
    values = value if isinstance(value, list) and "append" in type(action).__name__.lower() \
        else [value]
    for item in values:
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            fail("a string or a number" if action.type not in (int, float) else
                 "an integer" if action.type is int else "a number")
        if action.type is int and not isinstance(item, int):
            fail("an integer")
        if action.type is float and not isinstance(item, (int, float)):
            fail("a number")
        if action.type in (None, str) and not isinstance(item, str):
            fail("a string (quote it in YAML)")
        if action.choices and item not in action.choices:
            fail(f"one of {list(action.choices)}")
        if callable(action.type) and action.type not in (int, float, str):
            try:
                action.type(str(item))
            except (ValueError, TypeError) as err:
                fail(f"a value Beam's --{name} accepts ({err})")
    return [f"--{name}={item}" for item in values]


def _option_actions(path):
    """{flag name: argparse action} of every Beam pipeline option (the DaskRunner's too)."""
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    if path == DASK_RUNNER:
        import apache_beam.runners.dask.dask_runner  # noqa: F401 (defines DaskOptions)
    parser = _BeamArgumentParser(allow_abbrev=False)
    for cls in {str(c): c for c in PipelineOptions.__subclasses__()}.values():
        cls._add_argparse_args(parser)
    return {flag[2:]: action for flag, action in parser._option_string_actions.items()
            if flag.startswith("--")}


def _probe_dask(options, where):
    """A `dask_client_address` must take a TCP connection within PROBE_SECONDS."""
    address = options.get("dask_client_address")
    if not address:
        return
    parsed = urllib.parse.urlsplit(address if "://" in address else f"tcp://{address}")
    if parsed.scheme not in ("tcp", "tls"):
        return
    try:
        host, port = parsed.hostname, parsed.port
        if not host or not port:
            raise ValueError("no host:port in it")
        socket.create_connection((host, port), timeout=PROBE_SECONDS).close()
    except (OSError, ValueError) as err:
        raise ConfigError(
            f"{where}: `beam.options.dask_client_address` = {address!r} does not answer "
            f"({type(err).__name__}: {err}); expected a running Dask scheduler's address. Start "
            f"one (`dask scheduler --host 127.0.0.1 --port 8786` and `dask worker "
            f"tcp://127.0.0.1:8786 --nworkers 2`) and point the option at it, or drop the "
            "option to let Beam start a local Dask cluster for each component.") from None


def _runner_names():
    from apache_beam.options.pipeline_options import StandardOptions

    return sorted(set(StandardOptions.KNOWN_RUNNER_NAMES) | {"DaskRunner"})


def _short(runner):
    return runner.rsplit(".", 1)[-1]


def _overridden(variable):
    return f" (from the environment variable {variable})" if os.environ.get(variable) else ""
