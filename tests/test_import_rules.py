"""The dependency rules of docs/CONTRIBUTING.md, checked on every module of every package.

One fresh interpreter per package imports each of its modules (found by walking the package
directory) and reports the modules each import added to `sys.modules`; a rule names the
modules a package must never load. The TensorFlow-free modules are imported first, each
reported alone, so a module imported later that loads TensorFlow cannot hide one of them doing
so. Imports inside functions are not seen: what a module loads when it is imported is checked.
"""

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
TENSORFLOW = ("tensorflow", "keras")

#: package -> (module prefixes it must never load, its modules that must not load TensorFlow)
RULES = {
    "keras_ar": (("pipelines", "export", "serving"), ("keras_ar", "keras_ar.contract")),
    # export/runners.py runs artifacts through serving's backends, importing them inside its
    # runner functions only: importing any export module loads no serving module.
    "export": (("pipelines", "serving"), ()),
    "serving": (("keras_ar.models", "keras_ar.layers", "keras_ar.heads", "keras_ar.ops",
                 "keras_ar.samplers", "keras_ar.testing", "keras_ar.metrics", "pipelines",
                 "export"),
                ("serving", "serving.generator", "serving.tflite_backend",
                 "serving.onnx_backend", "serving.generation_spec", "serving.writers",
                 "serving.audio_features", "serving.plots", "serving.plot_cli",
                 "serving.image_prompt", "serving.batching_parameters",
                 "serving.batch_scheduler", "serving.source_input", "serving.condition_flags",
                 "serving.limits")),
    # pipelines may use serving's writers and backends, never its server side.
    "pipelines": (("serving.server", "serving.rest_server", "serving.grpc_service",
                   "serving.model_manager", "serving.servable"), ()),
}

PROBE = """
import importlib, json, os, sys
first = json.loads(sys.argv[1])
loaded = {}
for name in first + [m for m in json.loads(sys.argv[2]) if m not in first]:
    before = set(sys.modules)
    importlib.import_module(name)
    loaded[name] = sorted(set(sys.modules) - before)
print(json.dumps(loaded))
"""


def modules_of(package):
    """Every importable module of `package`, from its directory: `a.b` for a/b.py."""
    root = REPO / package
    names = []
    for path in sorted(root.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        if "__pycache__" in parts or parts[-1] == "__main__":
            continue
        if not all((REPO.joinpath(*parts[:i]) / "__init__.py").is_file()
                   for i in range(1, len(parts))):
            continue  # a folder of scripts or configs, not a subpackage
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def _matches(module, prefixes):
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def violations(loaded, forbidden, tf_free):
    """["<import> loaded <modules>"] for every rule broken."""
    found = []
    for name, added in loaded.items():
        bad = [m for m in added if _matches(m, forbidden)]
        if name in tf_free:
            bad += [m for m in added if _matches(m, TENSORFLOW)]
        if bad:
            found.append(f"import {name} loaded {sorted(set(bad))[:8]}")
    return found


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_imports_follow_the_dependency_rules(package):
    forbidden, tf_free = RULES[package]
    modules = modules_of(package)
    assert set(tf_free) <= set(modules), "a TF-free module named in RULES no longer exists"
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(list(tf_free)), json.dumps(modules)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(loaded) == set(modules)
    assert violations(loaded, forbidden, tf_free) == []


def test_the_check_reports_a_forbidden_import():
    loaded = {"serving.x": ["export", "export.manifest"], "serving.generator": ["tensorflow"]}
    assert violations(loaded, ("export",), ("serving.generator",)) == [
        "import serving.x loaded ['export', 'export.manifest']",
        "import serving.generator loaded ['tensorflow']"]
