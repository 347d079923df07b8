"""ML Metadata on a real MariaDB server: a tiny pipeline run twice (lineage, the rerun all cache
hits, as on SQLite), `pipeline show` on it, and the metadata section's bad inputs (refused
login, unreachable port, missing password variable) failing before anything is written.

The server (`mariadbd` from Debian's mariadb-server, requirements/debian.txt) runs as the
current user from a data directory made by `mariadb-install-db` in a tmp folder, on a free
loopback port and a tmp socket, for this module only."""

import getpass
import os
import pathlib
import shutil
import subprocess
import sys
import time

import pytest

from pipelines import config as config_lib
from pipelines import metadata as metadata_lib
from pipelines import runner, show
from pipelines.components.trainer_workers import free_ports
from tests.pipelines.test_text_pipeline import _tiny_text_config

REPO = pathlib.Path(__file__).parents[2]
PASSWORD_ENV = "KERAS_AR_TEST_MLMD_PASSWORD"


def _binary(name):
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        pytest.fail(f"{name} is not installed: the MySQL metadata tests need Debian's "
                    "mariadb-server and mariadb-client (scripts/install_system_packages.sh "
                    "installs requirements/debian.txt).")
    return path


def _client(server, sql, user="root", password=None):
    command = [_binary("mariadb"), "--no-defaults", "-S", server["socket"], "-u", user,
               "-N", "-B", "-e", sql]
    if password:
        command.insert(2, f"-p{password}")
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def mariadb(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mariadb")
    user = getpass.getuser()
    done = subprocess.run([_binary("mariadb-install-db"), "--no-defaults",
                           f"--datadir={folder / 'data'}", f"--user={user}",
                           "--auth-root-authentication-method=normal", "--skip-test-db"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    [port] = free_ports(1)
    server = {"socket": str(folder / "mysqld.sock"), "port": port, "host": "127.0.0.1",
              "database": "mlmd", "user": "keras_ar", "password": "s3cret-pw"}
    proc = subprocess.Popen([_binary("mariadbd"), "--no-defaults", f"--datadir={folder / 'data'}",
                             f"--port={port}", "--bind-address=127.0.0.1",
                             f"--socket={server['socket']}", f"--pid-file={folder / 'pid'}",
                             f"--user={user}", "--skip-name-resolve", "--skip-log-bin",
                             "--innodb-buffer-pool-size=16M",
                             f"--log-error={folder / 'error.log'}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while _client(server, "SELECT 1").returncode != 0:
            assert proc.poll() is None and time.time() < deadline, (
                (folder / "error.log").read_text() if (folder / "error.log").is_file() else "")
            time.sleep(0.5)
        made = _client(server, f"CREATE DATABASE mlmd; CREATE USER 'keras_ar'@'127.0.0.1' "
                               f"IDENTIFIED BY '{server['password']}'; GRANT ALL ON mlmd.* TO "
                               "'keras_ar'@'127.0.0.1';")
        assert made.returncode == 0, made.stderr
        yield server
    finally:
        proc.terminate()  # a clean shutdown
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _mysql_section(server, **changes):
    section = {"host": server["host"], "port": server["port"], "database": server["database"],
               "user": server["user"], "password_env": PASSWORD_ENV}
    section.update(changes)
    return {"mysql": section}


def _config(tmp_path, server, **changes):
    base = _tiny_text_config(tmp_path)
    raw = config_lib.to_dict(base)
    raw["export"]["targets"] = ["savedmodel"]
    raw["metadata"] = _mysql_section(server, **changes)
    return config_lib.from_dict(raw, "tiny_text_mysql")


def _count(server, table):
    out = _client(server, f"SELECT COUNT(*) FROM mlmd.{table}")
    return int(out.stdout) if out.returncode == 0 else 0  # no table: no record yet


@pytest.mark.slow
def test_pipeline_twice_on_mariadb_lineage_and_cache_hits(tmp_path, mariadb, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, mariadb["password"])
    config = _config(tmp_path, mariadb)
    root = tmp_path / "root"
    first = runner.run(config, root, logger=lambda m: None)
    assert {state for _, state, _ in first} == {"COMPLETE"}, first
    second = runner.run(config, root, logger=lambda m: None)
    assert {state for _, state, _ in second} == {"CACHED"}, second
    assert not (root / runner.METADATA_FILE).exists()  # every record went to MariaDB
    # the records are in the server's tables, read with its own client
    assert _count(mariadb, "Execution") == 2 * len(first)
    assert _count(mariadb, "Context") == 3  # the pipeline and its two runs

    store = metadata_lib.open_store(config.metadata, root)
    pushed = show.latest_pushed(store)
    types = show.lineage_types(store, pushed)
    assert types[0] == "PushedModel" and "Model" in types and "Examples" in types
    shown = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "pipeline", "show", "--config",
         str(_write_yaml(tmp_path, config)), "--pipeline-root", str(root)],
        cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True,
        timeout=300)
    assert shown.returncode == 0, shown.stderr
    assert len([line for line in shown.stdout.splitlines() if line.startswith("run ")]) == 2
    assert "CACHED" in shown.stdout and "lineage of the latest pushed model:" in shown.stdout


def _write_yaml(tmp_path, config):
    import yaml

    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config_lib.to_dict(config)))
    return path


def test_refused_login_fails_at_start_and_writes_nothing(tmp_path, mariadb, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    config = _config(tmp_path, mariadb)
    before = _count(mariadb, "Execution")
    with pytest.raises(config_lib.ConfigError) as err:
        runner.run(config, tmp_path / "root", logger=lambda m: None)
    message = str(err.value)
    assert "metadata.mysql" in message and "refused user 'keras_ar'" in message
    assert f"${PASSWORD_ENV}" in message and "GRANT ALL ON mlmd.*" in message
    assert "not-the-password" not in message  # never the password itself
    assert not (tmp_path / "root").exists()
    assert _count(mariadb, "Execution") == before


def test_unreachable_port_fails_at_start_and_writes_nothing(tmp_path, mariadb, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, mariadb["password"])
    [closed] = free_ports(1)
    config = _config(tmp_path, mariadb, port=closed)
    with pytest.raises(config_lib.ConfigError) as err:
        runner.run(config, tmp_path / "root", logger=lambda m: None)
    message = str(err.value)
    assert f"port {closed}" in message and "no MySQL server answers" in message
    assert "metadata.mysql.host/port" in message
    assert not (tmp_path / "root").exists()


def test_missing_password_variable_fails_at_start_via_the_cli(tmp_path, mariadb):
    config = _config(tmp_path, mariadb, password_env="KERAS_AR_TEST_UNSET_VARIABLE")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_AR_TEST_UNSET_VARIABLE"}
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "pipeline", "run",
         str(_write_yaml(tmp_path, config)), "--pipeline-root", str(tmp_path / "root")],
        cwd=REPO, env=dict(env, PYTHONPATH=str(REPO)), capture_output=True, text=True,
        timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "`metadata.mysql.password_env` = 'KERAS_AR_TEST_UNSET_VARIABLE'" in done.stderr
    assert "export KERAS_AR_TEST_UNSET_VARIABLE=" in done.stderr
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize("metadata, key", [
    ({"mysql": {"database": "mlmd"}}, "metadata.mysql.database"),
    ({"sqlite": "m.sqlite", "mysql": {"host": "h", "database": "d", "user": "u"}},
     "metadata.sqlite"),
    ({"mysql": {"host": "h", "user": "u"}}, "metadata.mysql.database"),
    ({"mysql": {"host": "h", "database": "d", "user": "u", "port": 0}},
     "metadata.mysql.port"),
])
def test_metadata_section_values_are_checked(metadata, key):
    with pytest.raises(config_lib.ConfigError, match=f"`{key}`"):
        config_lib.from_dict({"metadata": metadata}, "c.yaml")


def test_sqlite_path_and_connection_configs(tmp_path):
    default = config_lib.MetadataConfig()
    assert metadata_lib.sqlite_path(default, tmp_path) == tmp_path / "metadata.sqlite"
    chosen = config_lib.from_dict({"metadata": {"sqlite": str(tmp_path / "m.db")}}).metadata
    assert metadata_lib.connection_config(chosen, "x").sqlite.filename_uri == str(
        tmp_path / "m.db")
    mysql = config_lib.from_dict({"metadata": {"mysql": {
        "host": "db", "port": 3307, "database": "d", "user": "u"}}}).metadata
    made = metadata_lib.connection_config(mysql, "x").mysql
    assert (made.host, made.port, made.database, made.user, made.password) == (
        "db", 3307, "d", "u", "")
    assert metadata_lib.describe(mysql, "x") == "mysql u@db:3307/d"
