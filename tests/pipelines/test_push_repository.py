"""The Pusher's repository: versions claimed past incomplete folders, files added before a
version appears, and models.config entries merged by name."""

import pathlib

import pytest

from export import repository as export_repository
from pipelines.components import repository
from serving.model_manager import read_config_file


def _saved_model(tmp_path):
    folder = tmp_path / "exported"
    folder.mkdir()
    (folder / "saved_model.pb").write_bytes(b"pb")
    return folder


def test_an_incomplete_version_folder_is_taken_not_looped_on(tmp_path):
    base = tmp_path / "serving" / "m"
    (base / "1").mkdir(parents=True)  # a copy in progress: no saved_model.pb yet
    (base / "1" / "variables").mkdir()
    seen = []
    version = repository.push(_saved_model(tmp_path), base, {"model_fingerprint": "a"},
                              prepare=lambda folder: seen.append(sorted(
                                  p.name for p in folder.iterdir())))
    assert version == 2 and repository.versions(base) == [2]
    assert seen == [[repository.PUSH_INFO, "saved_model.pb"]]  # before the rename
    assert not [p for p in base.iterdir() if p.name.startswith(".tmp-")]


def test_a_failed_prepare_leaves_no_version_and_no_leftovers(tmp_path):
    base = tmp_path / "serving" / "m"

    def fail(folder):
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        repository.push(_saved_model(tmp_path), base, {}, prepare=fail)
    assert list(base.iterdir()) == []


def test_models_config_keeps_other_models_and_updates_by_name(tmp_path):
    config = tmp_path / "models.config"
    export_repository.add_model_to_config(config, "speech", tmp_path / "a")
    export_repository.add_model_to_config(config, "text", tmp_path / "b")
    export_repository.add_model_to_config(config, "speech", tmp_path / "c")
    models = {m.name: pathlib.Path(m.base_path) for m in read_config_file(config)}
    assert models == {"speech": tmp_path / "c", "text": tmp_path / "b"}
