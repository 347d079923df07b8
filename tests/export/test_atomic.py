"""`atomic_directory` replaces an existing directory without a moment where it is missing."""

import os

from export import atomic


def test_overwrite_never_leaves_the_path_missing(tmp_path, monkeypatch):
    target = tmp_path / "1"
    target.mkdir()
    (target / "saved_model.pb").write_text("old")
    missing = []
    real_replace = os.replace

    def watched_replace(src, dst):  # every rename inside the write: is the version there?
        real_replace(src, dst)
        if not target.exists():
            missing.append((str(src), str(dst)))

    monkeypatch.setattr(atomic.os, "replace", watched_replace)
    inode = target.stat().st_ino
    with atomic.atomic_directory(target, overwrite=True) as tmp:
        (tmp / "saved_model.pb").write_text("new")
    assert missing == [], f"{target} was missing after the renames {missing}"
    assert (target / "saved_model.pb").read_text() == "new"
    assert target.stat().st_ino != inode  # a new folder: a server sees it was replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["1"]  # no temporary left
