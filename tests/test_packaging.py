"""Packaging: the lock satisfies the declared ranges, each package's third-party imports are
covered by the core requirements plus its extra, every package is shipped, and the version,
changelog and licence agree."""

import ast
import pathlib
import re
import sys
from importlib import metadata

from packaging.requirements import Requirement

ROOT = pathlib.Path(__file__).resolve().parents[1]
# package -> the extras whose requirements it may import (besides the core ones)
AREAS = {"keras_ar": (), "export": ("export",), "serving": ("serving", "plots"),
         "pipelines": ("pipelines", "export", "serving", "dask"), "bench": ("all",)}


def _requirements():
    """(core requirements, {extra: requirements}) from the installed metadata."""
    core, extras = [], {}
    for text in metadata.requires("keras-ar") or []:
        req = Requirement(text)
        match = re.search(r'extra == "([^"]+)"', str(req.marker or ""))
        (extras.setdefault(match.group(1), []) if match else core).append(req)
    return core, extras


def test_installed_metadata_is_current():
    import keras_ar

    assert metadata.version("keras-ar") == keras_ar.__version__, (
        "the installed metadata is stale: run `pip install --no-deps -e .` (make venv does)")


def test_the_locked_versions_satisfy_every_declared_range():
    core, extras = _requirements()
    assert {"export", "serving", "pipelines", "plots", "test", "all"} <= set(extras)
    for req in core + [r for reqs in extras.values() for r in reqs]:
        installed = metadata.version(req.name)
        assert req.specifier.contains(installed, prereleases=True), (
            f"{req.name} {installed} (requirements/lock.txt) is outside setup.py's {req}")


def _third_party_imports(package):
    names = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module.split(".")[0])
    local = {"keras_ar", "pipelines", "export", "serving", "bench"}
    return {n for n in names - local if n not in sys.stdlib_module_names}


def test_each_package_imports_only_what_its_extras_install():
    core, extras = _requirements()
    owners = metadata.packages_distributions()
    for package, areas in AREAS.items():
        allowed = {r.name.lower() for r in core}
        for area in areas:
            allowed |= {r.name.lower() for r in extras[area]}
        closure = set()
        for name in allowed:  # a requirement's own requirements come with it
            closure |= {Requirement(t).name.lower() for t in metadata.requires(name) or []
                        if "extra ==" not in t}
        for module in sorted(_third_party_imports(package)):
            dists = {d.lower() for d in owners.get(module, [])}
            assert dists & (allowed | closure), (
                f"{package}/ imports `{module}` (from {sorted(dists)}), which neither the core "
                f"requirements nor the extras {list(areas)} install: add it to setup.py")


def test_every_package_is_shipped():
    tree = ast.parse((ROOT / "setup.py").read_text())
    listed = next(set(ast.literal_eval(k.value)) for node in ast.walk(tree)
                  if isinstance(node, ast.Call) for k in node.keywords if k.arg == "packages")
    on_disk = {str(p.parent.relative_to(ROOT)).replace("/", ".")
               for area in AREAS for p in (ROOT / area).rglob("__init__.py")}
    assert on_disk == listed, f"setup.py packages differ from the tree: {on_disk ^ listed}"


def test_changelog_and_licence():
    import keras_ar

    changelog = (ROOT / "CHANGELOG.md").read_text()
    first = re.search(r"^## \[?([0-9][^\]\s]*)", changelog, re.M)
    assert first and first.group(1) == keras_ar.__version__, (
        f"CHANGELOG.md's newest entry is {first and first.group(1)}, the package is "
        f"{keras_ar.__version__}")
    assert "Apache License" in (ROOT / "LICENSE").read_text()
