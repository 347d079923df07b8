"""Back-off of versions that failed to load: doubling waits up to the cap, and an immediate
retry when the version's files change."""

from serving import load_retry


def test_waits_double_up_to_the_cap_and_changed_files_retry_at_once(tmp_path, monkeypatch):
    now = [100.0]
    monkeypatch.setattr(load_retry.time, "monotonic", lambda: now[0])
    failures = load_retry.LoadFailures(base_s=0.5, max_s=3.0)
    version, key = tmp_path / "2", ("m", 2, str(tmp_path))
    version.mkdir()
    (version / "saved_model.pb").write_bytes(b"garbage")
    assert failures.due(key, version)
    waits = [failures.record(key, version, ValueError("bad\nmore"))[1] for _ in range(5)]
    assert waits == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert not failures.due(key, version)
    now[0] += 2.9
    assert not failures.due(key, version)
    now[0] += 0.2
    assert failures.due(key, version)
    failures.record(key, version, ValueError("bad"))
    (version / "variables.index").write_bytes(b"x")  # the copy went on
    assert failures.due(key, version)
    failure = failures.of_model("m")[2]
    assert (failure.attempts, failure.code, failure.message) == (6, "UNKNOWN",
                                                                 "ValueError: bad")
    failures.keep(lambda k: k[1] != 2)  # folder removed: forgotten, loaded at the next poll
    assert failures.of_model("m") == {} and failures.due(key, version)
