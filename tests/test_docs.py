"""The documents' commands and config paths match the code.

Rules (no list of exceptions):

* every line of a shell code block in README.md and docs/*.md that runs `keras-ar ...` is
  parsed by the parser the `keras-ar` entry point builds for that subcommand (nothing runs);
  `python -m pipelines.<module> ...` lines are parsed by that module's own `main` parser,
  stopped right after parsing; `make <target>` lines must name a Makefile target; lines of
  other programs (`docker run`, `tensorboard`) cannot be parsed offline and are not checked;
* every inline code span that starts with `keras-ar ` names a subcommand, and each of its
  `--flags` is one that subcommand accepts (spans are fragments, so required options may be
  missing);
* every `pipelines/configs/*.yaml` path the documents mention exists, and every config there
  loads with `pipelines.config.load`.
"""

import argparse
import importlib
import pathlib
import re
import shlex
from unittest import mock

import pytest

from pipelines import cli

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
SHELL_LANGUAGES = ("sh", "bash", "shell", "console")
INLINE = re.compile(r"(?<!`)`(keras-ar [^`]+)`(?!`)")
CONFIG_PATH = re.compile(r"pipelines/configs/[\w.-]+\.ya?ml")


def _code_blocks(text):
    """(language, body) of every fenced code block."""
    lang, body = None, []
    for line in text.splitlines():
        if line.startswith("```"):
            if lang is None:
                lang, body = line[3:].strip(), []
            else:
                yield lang, "\n".join(body)
                lang = None
        elif lang is not None:
            body.append(line)


def _shell_lines(text):
    """Command lines of the shell code blocks, continuation lines joined, `$ ` dropped."""
    for lang, body in _code_blocks(text):
        if lang not in SHELL_LANGUAGES:
            continue
        for line in body.replace("\\\n", " ").splitlines():
            line = line.strip()
            line = line[2:] if line.startswith("$ ") else line
            if line and not line.startswith("#"):
                yield line


def _commands():
    found = []
    for path in DOCS:
        for line in _shell_lines(path.read_text()):
            found.append(pytest.param(line, id=f"{path.name}: {line[:60]}"))
    return found


def _inline_commands():
    found = []
    for path in DOCS:
        for match in INLINE.finditer(path.read_text()):
            span = " ".join(match.group(1).split())
            found.append(pytest.param(span, id=f"{path.name}: {span[:60]}"))
    return found


def _subcommand_parser(command):
    """What `pipelines.cli.main` builds for `keras-ar <command>`, without running it."""
    assert command in cli.COMMANDS, f"unknown subcommand {command!r}; {sorted(cli.COMMANDS)}"
    module = importlib.import_module(cli.COMMANDS[command][0])
    parser = argparse.ArgumentParser(prog=f"keras-ar {command}", exit_on_error=False)
    module.add_arguments(parser)
    return parser


def _parse_or_fail(parser, args, line):
    try:
        parser.parse_args(args)
    except (SystemExit, argparse.ArgumentError) as err:
        pytest.fail(f"`{line}` does not parse: {err}")


class _Parsed(Exception):
    pass


def _parse_module_main(module_name, args, line):
    """Run `module.main(args)` with argparse stopped right after a successful parse."""
    module = importlib.import_module(module_name)
    assert hasattr(module, "main"), f"`{line}`: {module_name} has no main()"
    original = argparse.ArgumentParser.parse_args

    def parse_then_stop(parser, *a, **kw):
        original(parser, *a, **kw)
        raise _Parsed

    with mock.patch.object(argparse.ArgumentParser, "parse_args", parse_then_stop):
        try:
            module.main(args)
        except _Parsed:
            return
        except SystemExit as err:
            pytest.fail(f"`{line}` does not parse: exit {err.code}")
    pytest.fail(f"`{line}`: {module_name}.main returned without parsing arguments")


def _make_targets():
    text = (ROOT / "Makefile").read_text()
    return set(re.findall(r"^([\w-]+):", text, re.M))


@pytest.mark.parametrize("line", _commands())
def test_documented_command_parses(line):
    tokens = shlex.split(line, comments=True)
    if tokens[0] == "keras-ar":
        assert len(tokens) > 1, f"`{line}`: no subcommand"
        if tokens[1] in ("--help", "-h", "--version"):
            return
        _parse_or_fail(_subcommand_parser(tokens[1]), tokens[2:], line)
    elif tokens[:2] == ["python", "-m"] and tokens[2].startswith("pipelines."):
        if tokens[2] == "pipelines.cli":
            _parse_or_fail(_subcommand_parser(tokens[3]), tokens[4:], line)
        else:
            _parse_module_main(tokens[2], tokens[3:], line)
    elif tokens[0] == "make":
        missing = set(tokens[1:]) - _make_targets()
        assert not missing, f"`{line}`: no Makefile target {sorted(missing)}"


def _known_options(parser, tokens):
    options = set(parser._option_string_actions)
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for token in tokens:
                if token in action.choices:
                    options |= set(action.choices[token]._option_string_actions)
    return options


@pytest.mark.parametrize("span", _inline_commands())
def test_inline_command_flags_exist(span):
    tokens = span.split()
    parser = _subcommand_parser(tokens[1])
    known = _known_options(parser, tokens[2:])
    flags = [t.split("=", 1)[0] for t in tokens[2:] if t.startswith("--")]
    unknown = [f for f in flags if f not in known]
    assert not unknown, f"`{span}`: keras-ar {tokens[1]} has no {unknown}"


def test_documents_have_commands_to_check():
    assert len(_commands()) >= 10 and len(_inline_commands()) >= 10


def test_mentioned_configs_exist():
    missing = sorted({f"{path.name}: {m}" for path in DOCS
                      for m in CONFIG_PATH.findall(path.read_text())
                      if not (ROOT / m).is_file()})
    assert not missing, f"documents name configs that do not exist: {missing}"


@pytest.mark.parametrize("path", sorted((ROOT / "pipelines" / "configs").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_config_loads(path):
    from pipelines import config

    loaded = config.load(str(path))
    assert loaded.name == path.stem
