"""The public API's documentation: each model class's `Args:`, `Example:` and `References:`
sections (the example runs as a doctest), and type hints on the public functions.

Doctests print shapes and other deterministic values only, so they hold on any machine.
"""

import doctest
import importlib
import inspect
import re
import typing

import numpy as np
import pytest

import keras_ar.models as models
from export import onnx as onnx_export
from export import saved_model as saved_model_export
from export import tflite as tflite_export
from keras_ar.models.likelihood_training_model import LikelihoodTrainingModel
from serving import backend as backend_module
from serving import generator as generator_module
from serving.onnx_backend import OnnxBackend
from serving.saved_model_backend import SavedModelBackend
from serving.tf_serving_backend import TFServingBackend
from serving.tflite_backend import TFLiteBackend

export_all_module = importlib.import_module("export.export_all")  # `export.export_all` is
# also the name of the function the package exports

#: public model class -> a reference its `References:` must cite (an arXiv id or an author)
MODEL_REFERENCES = {
    "AutoregressiveModel": "1601.06759",
    "PixelCNN": "1601.06759",
    "GatedPixelCNN": "1606.05328",
    "PixelCNNPlusPlus": "1701.05517",
    "WaveNet": "1609.03499",
    "CausalTransformer": "1706.03762",
    "ContinuousSequenceModel": "Bishop",
}
SECTION = re.compile(r"^(Args|Returns|Raises|Yields|Attributes|Example|Examples|Note|Notes|"
                     r"References):\s*$")
ENTRY = re.compile(r"^    (\*{0,2}\w+)(?: \([^)]*\))?:(?:\s|$)")


def sections(doc):
    """{header: [lines]} of a Google-style docstring's sections: each runs to the next."""
    found, current = {}, None
    for line in inspect.cleandoc(doc).splitlines():
        match = SECTION.match(line)
        if match:
            current = found.setdefault(match.group(1), [])
        elif current is not None:
            current.append(line)
    return found


def args_entries(lines):
    """Parameter names of an `Args:` section, each with its description's first line."""
    entries = {}
    for line in lines:
        match = ENTRY.match(line)
        if match:
            entries[match.group(1)] = line[match.end():].strip()
        elif line.strip() and not line.startswith("        "):
            raise AssertionError(f"`Args:` line is neither an entry nor a continuation: "
                                 f"{line!r}")
    return entries


def init_parameters(cls):
    """{name: kind} of `cls.__init__`'s parameters, `self` excluded."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return {p.name: p.kind for p in params}


@pytest.mark.parametrize("name", sorted(MODEL_REFERENCES))
def test_args_section_names_every_init_parameter(name):
    cls = getattr(models, name)
    found = sections(cls.__doc__)
    assert "Args" in found, f"{name} has no `Args:` section"
    entries = args_entries(found["Args"])
    params = init_parameters(cls)
    named = {n for n, kind in params.items() if kind is not inspect.Parameter.VAR_KEYWORD}
    documented = {n for n in entries if not n.startswith("**")}
    assert named - documented == set(), f"{name}: parameters missing from `Args:`"
    assert documented - named == set(), f"{name}: `Args:` names unknown parameters"
    for entry in entries:
        if entry.startswith("**"):
            assert params.get(entry[2:]) is inspect.Parameter.VAR_KEYWORD, entry
    assert all(entries.values()), f"{name}: an `Args:` entry has no description"


@pytest.mark.parametrize("name", sorted(MODEL_REFERENCES))
def test_references_section_cites_the_papers(name):
    found = sections(getattr(models, name).__doc__)
    assert "References" in found, f"{name} has no `References:` section"
    text = "\n".join(found["References"])
    assert MODEL_REFERENCES[name] in text
    assert re.search(r"arXiv \d{4}\.\d{5}", text), f"{name}: no arXiv id in `References:`"


def test_the_section_parser_reads_a_google_docstring():
    doc = """Summary.

    Args:
        a: int. The first.
        b_c (str): two
            lines.
        **kwargs: passed on.

    Example:

    Some text:

    >>> 1 + 1
    2

    References:
        - A paper, arXiv 1234.56789.
    """
    found = sections(doc)
    assert args_entries(found["Args"]) == {"a": "int. The first.", "b_c": "two",
                                           "**kwargs": "passed on."}
    assert ">>> 1 + 1" in found["Example"] and "2" in found["Example"]
    assert found["References"] == ["    - A paper, arXiv 1234.56789."]
    with pytest.raises(AssertionError):
        args_entries(["  stray"])


@pytest.mark.parametrize("name", sorted(MODEL_REFERENCES))
def test_example_doctest_runs(name):
    cls = getattr(models, name)
    assert "Example" in sections(cls.__doc__), f"{name} has no `Example:` section"
    tests = doctest.DocTestFinder(recurse=False).find(cls, name, globs={})
    assert sum(len(t.examples) for t in tests) >= 4, f"{name}: the example is too short"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    failures = []
    for test in tests:
        runner.run(test, out=failures.append)
    results = runner.summarize(verbose=False)
    assert results.failed == 0, "".join(failures)


# ----------------------------------------------------------------------- type hints
#: names imported under `typing.TYPE_CHECKING` only, to resolve the hints that use them
TYPE_CHECKING_NAMES = {"AutoregressiveModel": models.AutoregressiveModel,
                       "Backend": backend_module.Backend, "np": np}
HINTED_CLASSES = [
    LikelihoodTrainingModel, models.AutoregressiveModel, models.ImageAutoregressiveModel,
    models.PixelCNN, models.GatedPixelCNN, models.PixelCNNPlusPlus, models.WaveNet,
    models.CausalTransformer, models.ContinuousSequenceModel, generator_module.Generator,
    backend_module.Backend, SavedModelBackend, TFLiteBackend, OnnxBackend, TFServingBackend]
HINTED_FUNCTIONS = [
    saved_model_export.export_saved_model, saved_model_export.write_archive,
    tflite_export.export_tflite, onnx_export.export_onnx, export_all_module.export_all,
    export_all_module.parse_targets, generator_module.truncate, generator_module.noise_for,
    backend_module.check_feed_shapes, backend_module.infer_backend,
    backend_module.make_backend]


def public_functions(cls):
    """`__init__` and the public methods and properties `cls` itself defines."""
    found = {}
    for attr, value in vars(cls).items():
        if attr.startswith("_") and attr != "__init__":
            continue
        if isinstance(value, (classmethod, staticmethod)):
            value = value.__func__
        elif isinstance(value, property):
            value = value.fget
        if inspect.isfunction(value):
            found[f"{cls.__name__}.{attr}"] = value
    return found


def hinted():
    functions = {f"{f.__module__}.{f.__name__}": f for f in HINTED_FUNCTIONS}
    for cls in HINTED_CLASSES:
        functions.update(public_functions(cls))
    return functions


def missing_hints(function):
    """Parameters (and "return") of `function` without an annotation; `self`/`cls` need
    none."""
    signature = inspect.signature(function)
    params = list(signature.parameters.values())
    if params and params[0].name in ("self", "cls"):
        params = params[1:]
    missing = [p.name for p in params if p.annotation is inspect.Parameter.empty]
    if signature.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def test_public_api_has_type_hints_that_resolve():
    functions = hinted()
    assert len(functions) > 100
    for expected in ("AutoregressiveModel.generate", "AutoregressiveModel.sample_chunk",
                     "LikelihoodTrainingModel.log_prob", "Generator.generate",
                     "Backend.run", "TFLiteBackend.__init__"):
        assert expected in functions
    unhinted = {name: missing for name, f in functions.items() if (missing := missing_hints(f))}
    assert unhinted == {}
    for name, function in functions.items():
        try:
            typing.get_type_hints(function, globalns={**function.__globals__,
                                                      **TYPE_CHECKING_NAMES})
        except Exception as error:  # a typo in a hint: name the function
            raise AssertionError(f"{name}: its hints do not resolve: {error}") from error


def test_the_hint_check_finds_a_missing_hint():
    def partly(self, a: int, b, *args, c: str = "", **kwargs) -> None:
        pass

    def unhinted_return(a: int):
        pass

    assert missing_hints(partly) == ["b", "args", "kwargs"]
    assert missing_hints(unhinted_return) == ["return"]
