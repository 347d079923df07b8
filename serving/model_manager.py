"""Models under management: version discovery, version policies, polling, loading, warm-up.

Layout, as TF Serving has it: `BASE_PATH/<integer version>/saved_model.pb`. Version policies
(`model_version_policy` in a ModelServerConfig): `latest { num_versions: N }` (default, N=1),
`all {}`, `specific { versions: ... }`.

Availability preserving, as TF Serving's default policy: new versions are loaded before the
ones they replace are unloaded, and a version that fails to load (a half-copied or corrupt
folder) leaves the served versions as they were; it is retried on later polls with back-off
(`serving.load_retry`) until it loads or its folder is removed, and `GetModelStatus` shows its
error meanwhile. A version folder replaced in place (a new inode, e.g. `--overwrite`) is loaded
again; the old servable answers until the new one is available. Publish a version atomically
(write it elsewhere, then rename it into place) and it is never seen half-written.
"""

import logging
import pathlib
import re
import threading

from keras_ar import contract
from serving import load_retry
from serving.errors import ServingError
from serving.servable import Servable

LOG = logging.getLogger("keras_ar.serving")
MODEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")


class ModelConfig:
    """One model: name, base path, version policy and version labels."""

    def __init__(self, name, base_path, policy="latest", num_versions=1, versions=(),
                 labels=None):
        if not MODEL_NAME.match(name or ""):
            raise ValueError(f"Model name {name!r} must match {MODEL_NAME.pattern}.")
        if policy not in ("latest", "all", "specific"):
            raise ValueError(f"Version policy must be latest/all/specific; got {policy!r}.")
        self.name = name
        self.base_path = pathlib.Path(base_path).resolve()
        self.policy, self.num_versions = policy, max(1, int(num_versions))
        self.versions = sorted(int(v) for v in versions)
        self.labels = {str(k): int(v) for k, v in (labels or {}).items()}

    @classmethod
    def from_proto(cls, proto):
        policy, num, versions = "latest", 1, ()
        which = proto.model_version_policy.WhichOneof("policy_choice")
        if which == "all":
            policy = "all"
        elif which == "specific":
            policy, versions = "specific", list(proto.model_version_policy.specific.versions)
        elif which == "latest":
            num = proto.model_version_policy.latest.num_versions or 1
        if proto.model_platform not in ("", "tensorflow"):
            raise ValueError(f"Model {proto.name!r}: only model_platform \"tensorflow\" is "
                             f"served; got {proto.model_platform!r}.")
        return cls(proto.name, proto.base_path, policy, num, versions,
                   dict(proto.version_labels))

    def aspired(self, available):
        """The versions to serve, from the sorted integer versions found on disk."""
        if self.policy == "all":
            return list(available)
        if self.policy == "specific":
            return [v for v in available if v in self.versions]
        return list(available)[-self.num_versions:]


def read_config_file(path):
    """A text-format ModelServerConfig file -> [ModelConfig]."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = model_server_config_pb2.ModelServerConfig()
    text_format.Parse(pathlib.Path(path).read_text(), config)
    if config.WhichOneof("config") != "model_config_list":
        raise ValueError(f"{path}: only model_config_list is supported.")
    models = [ModelConfig.from_proto(m) for m in config.model_config_list.config]
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: model names must be unique; got {names}.")
    return models


def versions_on_disk(base_path):
    """Sorted integer versions under `base_path` that hold a saved_model.pb."""
    return contract.versions(base_path)


class ModelManager:
    """Keeps each model's aspired versions loaded; `poll()` reconciles with the disk."""

    def __init__(self, configs, enable_warmup=True, session_threads=(0, 0),
                 prefer_tflite_model=False, tflite_interpreters=1, limits=None,
                 load_retry_max_wait_s=load_retry.DEFAULT_MAX_WAIT_S, batcher=None):
        self.configs = {c.name: c for c in configs}
        self.batcher = batcher  # serving.batch_scheduler.BatchScheduler (None: no batching)
        self.limits = limits  # serving.limits.ServerLimits (None: the defaults)
        self.prefer_tflite_model = bool(prefer_tflite_model)  # run <version>/model.tflite
        self.tflite_interpreters = int(tflite_interpreters)
        self.enable_warmup = enable_warmup
        self.session_threads = tuple(session_threads)  # (intra-op, inter-op); 0: TF picks
        self._servables = {c.name: {} for c in configs}  # name -> {version: Servable}
        self._failures = load_retry.LoadFailures(max_s=load_retry_max_wait_s)
        self._loading = set()  # (name, version) being loaded now
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()

    # ----------------------------------------------------------------- lookup
    def get(self, name, version=None, label=None):
        """The servable for `name` at `version` / `label` (latest served when neither)."""
        if name not in self.configs:
            raise ServingError("NOT_FOUND", f"Servable not found for request: model "
                                            f"{name!r} is not served; served: "
                                            f"{sorted(self.configs)}.")
        config = self.configs[name]
        with self._lock:
            loaded = dict(self._servables.get(name, {}))  # {} while a reconfigure runs
        if label is not None:
            if label not in config.labels:
                raise ServingError("NOT_FOUND", f"Unrecognized servable version label "
                                                f"{label!r} for model {name!r}.")
            version = config.labels[label]
        if version is None:
            if not loaded:
                raise ServingError("NOT_FOUND", f"Model {name!r} has no loaded version yet "
                                                f"(looked under {config.base_path}).")
            return loaded[max(loaded)]
        if int(version) not in loaded:
            raise ServingError("NOT_FOUND", f"Servable not found for request: Specific("
                                            f"{name}, {int(version)}); loaded versions: "
                                            f"{sorted(loaded)}.")
        return loaded[int(version)]

    def loaded_versions(self, name):
        if name not in self.configs:
            raise ServingError("NOT_FOUND", f"Model {name!r} is not served.")
        with self._lock:
            return sorted(self._servables.get(name, {}))

    # ----------------------------------------------------------------- polling
    def poll(self):
        """Load newly aspired versions, then unload versions no longer aspired."""
        with self._poll_lock:
            for config in self.configs.values():
                self._reconcile(config)

    def reconfigure(self, configs):
        """Serve `configs` ([ModelConfig]) from now on, as TF Serving's ReloadConfig: new
        models are loaded, removed ones unloaded, changed version policies, labels and base
        paths applied (new versions load before the ones they replace unload)."""
        configs = {c.name: c for c in configs}
        with self._poll_lock:
            with self._lock:
                for name in configs:
                    self._servables.setdefault(name, {})
            removed = sorted(set(self.configs) - set(configs))
            self.configs = configs  # one assignment: `get` sees the old or the new dict
            with self._lock:
                for name in removed:
                    LOG.info("Unloading %s (removed from the model config)", name)
                    del self._servables[name]
            self._failures.keep(lambda key: key[0] in configs)
            for config in configs.values():
                self._reconcile(config)

    def version_states(self, name):
        """{version: (state, error code, error message)} of model `name`, as GetModelStatus
        reports them: AVAILABLE (loaded), LOADING, or END with the error of a failed load."""
        if name not in self.configs:
            raise ServingError("NOT_FOUND", f"Model {name!r} is not served; served: "
                                            f"{sorted(self.configs)}.")
        states = {v: ("END", f.code, f.message)
                  for v, f in self._failures.of_model(name).items()}
        with self._lock:
            states.update({v: ("LOADING", "OK", "") for n, v in self._loading if n == name})
            states.update({v: ("AVAILABLE", "OK", "") for v in self._servables.get(name, {})})
        return states

    def _reconcile(self, config):
        aspired = config.aspired(versions_on_disk(config.base_path))
        base = str(config.base_path)
        self._failures.keep(lambda key: key[0] != config.name or (
            key[2] == base and key[1] in aspired))  # folder removed or no longer aspired
        for version in aspired:
            if not self._fresh(config, version):
                self._load(config, version)
        self._unload_unaspired(config.name, aspired)

    def _fresh(self, config, version):
        """Version `version` is loaded from its current folder (same base path, same inode:
        a folder replaced in place is loaded again)."""
        with self._lock:
            servable = self._servables[config.name].get(version)
        path = config.base_path / str(version)
        return (servable is not None and servable.path == path
                and servable.identity == load_retry.directory_identity(path))

    def _unload_unaspired(self, name, aspired):
        """TF Serving's availability-preserving policy: unload the lowest unaspired version
        when no version is aspired, when an aspired version is loaded, or when more than one
        unaspired version is loaded; otherwise keep it serving."""
        with self._lock:
            servables = self._servables[name]
            while True:
                unaspired = sorted(v for v in servables if v not in aspired)
                ready = any(v in servables for v in aspired)
                if not unaspired or (aspired and not ready and len(unaspired) < 2):
                    return
                LOG.info("Unloading %s version %d", name, unaspired[0])
                del servables[unaspired[0]]

    def _load(self, config, version):
        key = (config.name, version, str(config.base_path))
        path = config.base_path / str(version)
        if not self._failures.due(key, path):
            return
        identity = load_retry.directory_identity(path)
        with self._lock:
            self._loading.add((config.name, version))
        try:
            servable = self._new_servable(config.name, version, path)
        except Exception as error:  # a bad version must not take the server (or model) down
            attempts, wait = self._failures.record(key, path, error)
            LOG.error("Loading %s version %d from %s failed (attempt %d; the served versions "
                      "stay; retrying in %.1f s or when its files change): %s", config.name,
                      version, path, attempts, wait, error)
            return
        finally:
            with self._lock:
                self._loading.discard((config.name, version))
        servable.identity = identity
        self._failures.clear(key)
        with self._lock:
            self._servables[config.name][version] = servable  # the old one, if any, is released
        LOG.info("Loaded %s version %d from %s (%s runtime)", config.name, version, path,
                 servable.runtime)

    def _new_servable(self, name, version, path):
        servable = Servable(name, version, path, *self.session_threads,
                            prefer_tflite=self.prefer_tflite_model,
                            tflite_interpreters=self.tflite_interpreters, limits=self.limits,
                            batcher=self.batcher)
        if self.enable_warmup:
            count = servable.warm_up()
            if count:
                LOG.info("Warmed up %s version %d with %d requests", name, version, count)
        return servable

    def start_polling(self, interval_s, stop_event):
        """Poll every `interval_s` seconds in a daemon thread until `stop_event` is set; a
        version that fails to load waits `interval_s` doubled per failure before a retry."""
        self._failures.base_s = float(interval_s)
        return _every(interval_s, stop_event, self.poll, "fs-poll", "File system poll")

    def start_config_polling(self, path, interval_s, stop_event):
        """Re-read the model config file `path` every `interval_s` seconds and apply it when
        it changed (`--model_config_file_poll_wait_seconds`); a file that does not parse is
        logged and the running config kept, as in TF Serving. Replace the file atomically
        (write a temporary file, then rename it): a half-written file may parse."""
        state = {"text": pathlib.Path(path).read_text()}

        def check():
            text = pathlib.Path(path).read_text()
            if text == state["text"]:
                return
            state["text"] = text  # a bad file is reported once, until it changes again
            configs = read_config_file(path)  # raises: logged, the old config stays
            LOG.info("Model config %s changed: serving %s", path, [c.name for c in configs])
            self.reconfigure(configs)

        return _every(interval_s, stop_event, check, "config-poll", f"Model config {path}")


def _every(interval_s, stop_event, action, name, what):
    """Run `action` every `interval_s` seconds in a daemon thread until `stop_event`."""
    def loop():
        while not stop_event.wait(interval_s):
            try:
                action()
            except Exception:  # keep polling whatever one pass hit
                LOG.exception("%s poll failed", what)

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread
