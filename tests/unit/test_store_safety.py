"""Opening databases safely: foreign files untouched, corruption refused before any write,
read-only databases readable."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from store_samples import sample_measurement, sample_verdict

from probe.store import Store, StoreError


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _filled(path: Path, n: int = 300) -> None:
    with Store.open(path) as store:
        vid = store.vantage("lab")
        rid = store.start_run(vid, ["list.csv sha256:0"], {})
        for i in range(n):
            m = sample_measurement(i)
            store.write(rid, vid, [(m, sample_verdict(), True)])
        store.finish_run(rid, "complete")
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def test_a_foreign_sqlite_file_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA application_id = 1234")
    conn.execute("CREATE TABLE notes (id INTEGER, body TEXT)")
    conn.execute("INSERT INTO notes VALUES (1, 'mine')")
    conn.commit()
    conn.close()
    before = _digest(path)
    with pytest.raises(StoreError, match=r"not a probe database.*left untouched"):
        Store.open(path)
    assert _digest(path) == before
    assert not (tmp_path / "app.db-wal").exists()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()


def test_a_foreign_file_without_application_id_is_refused_untouched(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    before = _digest(path)
    with pytest.raises(StoreError, match="customers"):
        Store.open(path)
    assert _digest(path) == before and not (tmp_path / "plain.db-wal").exists()


def _corrupt(path: Path) -> None:
    """Zero one page in the middle: the schema stays readable (opening alone notices nothing),
    the table that page belongs to is damaged."""
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")  # the header's page size (8 KiB since schema 11)
    pages = len(data) // page
    assert pages > 8
    middle = pages // 2
    data[middle * page : (middle + 1) * page] = bytes(page)
    path.write_bytes(bytes(data))


def test_the_damage_is_invisible_to_a_plain_open(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    _filled(path)
    _corrupt(path)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0] >= 1
    conn.close()


def test_a_corrupt_database_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    _filled(path)
    _corrupt(path)
    before = _digest(path)
    with pytest.raises(StoreError, match=r"corrupt.*nothing was written"):
        Store.open(path, check=True)  # as the commands that write measurements open it
    assert _digest(path) == before


def test_opening_reads_no_more_than_the_schema_unless_asked_or_about_to_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # quick_check reads the whole file: minutes for a merged database of gigabytes, which
    # `probe results` (a query of milliseconds) cannot pay; a reader writes nothing, so it
    # needs no check first (probe check does it on demand).
    path = tmp_path / "r.db"
    _filled(path, 3)
    checked: list[str] = []
    monkeypatch.setattr(Store, "_check_integrity", lambda self: checked.append(self.path))
    Store.open(path, create=False).close()
    Store.open(path, readonly=True).close()
    assert checked == []
    Store.open(path, create=False, check=True).close()  # writers of measurements are checked
    assert checked == [str(path)]
    conn = sqlite3.connect(path)  # a copy out of WAL mode: opening switches it, so it is checked
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    checked.clear()
    Store.open(path, create=False).close()
    assert checked == [str(path)]


def _run_into(path: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`probe run` into ``path``, with no network to find (a loopback resolver where nothing
    listens): it reaches the database only to record an offline run."""
    return subprocess.run(
        [sys.executable, "-m", "probe", "run", "--url", "http://192.0.2.1/", "--no-control",
         "--resolver", "127.0.0.1:9", "--accept-risks", "--db", str(path)],
        capture_output=True, text=True, timeout=60,
        env={"PROBE_CONFIG_DIR": str(tmp_path / "cfg"), "PATH": "/usr/bin:/bin",
             "PYTHONPATH": str(Path(__file__).parents[1] / "netguard_site"),
             "PROBE_NETGUARD": "1"},
    )


def test_probe_run_on_a_corrupt_database_exits_1_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    _filled(path)
    _corrupt(path)
    before = _digest(path)
    result = _run_into(path, tmp_path)
    assert result.returncode == 1, result.stderr
    assert "corrupt" in result.stderr
    assert _digest(path) == before


@pytest.mark.parametrize("kind", ["foreign", "corrupt"])
def test_probe_run_leaves_no_lock_file_beside_a_refused_database(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "photos.db"
    if kind == "foreign":
        conn = sqlite3.connect(path)
        conn.execute("CREATE TABLE photos (id INTEGER)")
        conn.commit()
        conn.close()
    else:
        _filled(path)
        _corrupt(path)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = _run_into(path, tmp_path)
    assert result.returncode == 1, result.stderr
    assert ("not a probe database" if kind == "foreign" else "corrupt") in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "cfg") == before  # no .lock


def test_the_lock_file_of_a_probe_database_stays_and_one_found_there_is_kept(tmp_path: Path) -> None:
    from probe.store.lock import lock_path, run_lock

    path = tmp_path / "r.db"
    with run_lock(path):
        Store.open(path).close()
    assert lock_path(path).exists()  # a probe database's lock file is reused run after run
    foreign = tmp_path / "app.db"
    sqlite3.connect(foreign).execute("CREATE TABLE notes (x)").connection.commit()
    lock_path(foreign).write_text("")  # someone else's, from before: not ours to remove
    with pytest.raises(StoreError), run_lock(foreign):
        Store.open(foreign)
    assert lock_path(foreign).exists()


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)")
def test_a_database_on_a_read_only_medium_can_be_read(tmp_path: Path) -> None:
    import os

    if os.geteuid() != 0:
        pytest.skip("needs root for a read-only bind mount")
    media = tmp_path / "media"
    media.mkdir()
    _filled(media / "r.db", n=5)
    with Store.open(media / "r.db") as store:  # leave it in WAL mode, as probe does
        store.conn.execute("PRAGMA journal_mode").fetchone()
    script = (
        f"mount --bind {media} {media} && mount -o remount,bind,ro {media} && "
        f"{sys.executable} -m probe runs --db {media}/r.db --json && "
        f"{sys.executable} -m probe results --db {media}/r.db --json"
    )
    result = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert '"status":"complete"' in result.stdout.replace(" ", "")
    assert result.stdout.count('"url"') == 5


def test_read_only_open_refuses_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import probe.store.connection as connection

    path = tmp_path / "r.db"
    _filled(path, n=2)
    monkeypatch.setattr(connection, "_writable", lambda p: False)
    with Store.open(path, create=False) as store:
        assert store.readonly
        assert len(list(store.results("latest"))) == 2
        with pytest.raises(sqlite3.Error):
            store.vantage("other")
