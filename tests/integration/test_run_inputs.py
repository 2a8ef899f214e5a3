"""`probe run` on lists from pipes, stdin, FIFOs and devices; what a run records about its lists."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from servers import LoopbackNet
from test_probe_run import FAST, rows

pytestmark = pytest.mark.integration

HEADER = "url,category_code,category_description,date_added,source,notes\n"


def _list(net: LoopbackNet) -> str:
    return HEADER + f"{net.url('ok.test')},NEWS,News,2020-01-01,x,\n" + \
        f"{net.url('nxdomain.test')},NEWS,News,2020-01-01,x,\n"


def _argv(net: LoopbackNet, db: Path, *lists: str) -> list[str]:
    return [sys.executable, "-m", "probe", "run", *lists, "--resolver", net.resolver,
            "--no-control", "--accept-risks", "--no-progress", "--db", str(db), *FAST]


def _env(tmp_path: Path) -> dict[str, str]:
    return dict(os.environ, PROBE_CONFIG_DIR=str(tmp_path / "cfg"))


# Exec argv[1:] with SIGINT as a terminal leaves it: not blocked, default disposition.
_TERMINAL_SIGINT = (
    "import os, signal, sys; "
    "signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT}); "
    "signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)


def _signal_state(pid: int) -> str:
    """A process's state, threads and signal masks, from /proc (for a failure's message)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text().splitlines()
        wchan = Path(f"/proc/{pid}/wchan").read_text()
    except OSError as exc:
        return f"no /proc entry: {exc}"
    keep = ("State", "Threads", "SigPnd", "ShdPnd", "SigBlk", "SigIgn", "SigCgt")
    return ", ".join(line for line in status if line.split(":")[0] in keep) + f", wchan {wchan}"


def test_a_list_from_a_pipe_is_measured_whole(loopback_net: LoopbackNet, tmp_path: Path) -> None:
    # What `probe run <(cat list)` passes: /dev/fd/N, a pipe.
    db = tmp_path / "r.db"
    r, w = os.pipe()
    os.write(w, _list(loopback_net).encode())
    os.close(w)
    try:
        result = subprocess.run(_argv(loopback_net, db, f"/dev/fd/{r}"), pass_fds=(r,),
                                env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    finally:
        os.close(r)
    assert result.returncode == 0, result.stderr
    assert rows(db, "select count(*) as n from measurements where final = 1")[0]["n"] == 2


def test_a_list_from_stdin_is_measured(loopback_net: LoopbackNet, tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    result = subprocess.run(_argv(loopback_net, db, "-"), input=_list(loopback_net),
                            env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    sources = {r["source"] for r in rows(db, "select source from measurements")}
    assert sources == {"<stdin>:2", "<stdin>:3"}


def test_a_fifo_nobody_writes_to_does_not_block_ctrl_c(
    loopback_net: LoopbackNet, tmp_path: Path
) -> None:
    fifo = tmp_path / "list.fifo"
    os.mkfifo(fifo)
    db = tmp_path / "r.db"
    # The probe must see Ctrl-C as a terminal delivers it. A test run can inherit SIGINT ignored
    # (a background job of a non-interactive shell) or blocked (a supervisor's signal mask), and
    # an exec'd child keeps both: exec the probe through a wrapper that gives it a terminal's
    # SIGINT, unblocked with the default disposition.
    # PYTHONFAULTHANDLER: if it does not stop, SIGABRT makes it print where every thread is.
    proc = subprocess.Popen([sys.executable, "-c", _TERMINAL_SIGINT, *_argv(loopback_net, db, str(fifo))],
                            env=dict(_env(tmp_path), PYTHONFAULTHANDLER="1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # A writer's blocking open returns once the probe has the FIFO open for reading: that
        # is the handshake (in a thread, so that a probe that never opens it fails the test).
        opened: list[int] = []
        opener = threading.Thread(target=lambda: opened.append(os.open(fifo, os.O_WRONLY)),
                                  daemon=True)
        opener.start()
        opener.join(timeout=60)
        assert opened, "the probe never opened the FIFO"
        fd = opened[0]
        proc.send_signal(signal.SIGINT)
        try:
            _out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            state = _signal_state(proc.pid)
            proc.send_signal(signal.SIGABRT)
            _out, err = proc.communicate(timeout=10)
            raise AssertionError(f"the probe ignored SIGINT for 20 s ({state}); stderr:\n{err}") from None
        os.close(fd)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "nothing was stored" in err


def test_a_fifo_with_a_writer_is_measured(loopback_net: LoopbackNet, tmp_path: Path) -> None:
    fifo = tmp_path / "list.fifo"
    os.mkfifo(fifo)
    db = tmp_path / "r.db"
    proc = subprocess.Popen(_argv(loopback_net, db, str(fifo)), env=_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def write() -> None:
        with open(fifo, "w") as fh:  # blocks until the probe opened it: that is the handshake
            fh.write(_list(loopback_net))

    # The writer waits in a thread, so a probe that exits without opening the FIFO fails the
    # test (with its stderr) instead of leaving it blocked in open() for ever.
    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        _out, err = proc.communicate(timeout=120)
    finally:
        if writer.is_alive():  # nobody opened the FIFO: be its reader, so the writer ends
            reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            writer.join(timeout=10)
            os.close(reader)
    assert proc.returncode == 0, err
    assert rows(db, "select count(*) as n from measurements where final = 1")[0]["n"] == 2


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_is_refused_with_a_clear_message(
    loopback_net: LoopbackNet, tmp_path: Path, device: str
) -> None:
    db = tmp_path / "r.db"
    result = subprocess.run(_argv(loopback_net, db, device), env=_env(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"{device}: binary data" in result.stderr


def test_runs_record_list_names_and_hashes_never_paths(
    loopback_net: LoopbackNet, tmp_path: Path
) -> None:
    home = tmp_path / "home" / "alice"
    home.mkdir(parents=True)
    lst = home / "my-list.csv"
    lst.write_text(_list(loopback_net))
    ca = home / "ca.pem"
    ca.write_text(Path(loopback_net.ca_path).read_text())
    db = home / "results" / "r.db"
    result = subprocess.run([*_argv(loopback_net, db, str(lst)), "--cafile", str(ca)],
                            env=_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    run = rows(db, "select lists, options from runs")[0]
    import hashlib

    digest = hashlib.sha256(lst.read_bytes()).hexdigest()
    assert json.loads(run["lists"]) == [f"my-list.csv sha256:{digest}"]
    options = json.loads(run["options"])
    assert options["db"] == "r.db" and options["measure"]["cafile"] == "ca.pem"
    for table, column in (("runs", "lists"), ("runs", "options"), ("measurements", "source")):
        for r in rows(db, f"select {column} as v from {table}"):
            assert "alice" not in r["v"] and str(tmp_path) not in r["v"], (table, column)


@pytest.mark.parametrize(("name", "content", "extra"), [
    ("utf16.csv", (HEADER + "http://a.test/,NEWS,News,2020-01-01,x,\n").encode("utf-16"), ()),
    ("noheader.csv", b"http://a.test/,NEWS,News,2020-01-01,x,\n", ()),
    ("fine.csv", HEADER.encode() + b"http://a.test/,NEWS,News,2020-01-01,x,\n",
     ("--url", "ftp://x/")),
])
def test_bad_input_is_refused_before_anything_is_recorded(
    loopback_net: LoopbackNet, tmp_path: Path, name: str, content: bytes, extra: tuple[str, ...]
) -> None:
    """A list or --url the run cannot use exits 2 and leaves the database as it was: no run
    row, no vantage point seen again (docs/reliability.md's guarantee for bad input)."""
    from probe.store import Store

    db = tmp_path / "r.db"
    with Store.open(db) as store:  # an existing database, as a cron job's would be
        store.conn.execute("INSERT INTO vantage_points (name, created_at, updated_at) "
                           "VALUES ('home', '2020-01-01T00:00:00Z', '2020-01-01T00:00:00Z')")
        store.conn.commit()
    lst = tmp_path / name
    lst.write_bytes(content)
    result = subprocess.run([*_argv(loopback_net, db, str(lst)), "--vantage", "home", *extra],
                            env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert (name if not extra else "--url") in result.stderr
    with Store.open(db, create=False) as store:
        assert store.conn.execute("SELECT count(*) FROM runs").fetchone()[0] == 0
        assert store.conn.execute("SELECT updated_at FROM vantage_points WHERE name = 'home'"
                                  ).fetchone()[0] == "2020-01-01T00:00:00Z"


@pytest.mark.parametrize(("category", "content", "message"), [
    # A typo: before, a warning, then a "complete" run of 0 URLs and exit 0 (every night
    # under cron).
    ("NEWZ", "NEWS", "--category: unknown category code NEWZ: in neither the Citizen Lab "
                     "legend nor the lists; `probe testlists` shows the categories of each list"),
    ("NEWS,NEWZ", "NEWS", "--category: unknown category code NEWZ"),
    # A real code that no row of the list has: nothing to measure.
    ("HUMR", "NEWS", "nothing to measure: no URL of my.csv is in category HUMR; `probe "
                     "testlists` shows the categories and URLs of each list"),
    # A list with no URL at all.
    (None, None, "nothing to measure: my.csv holds no URL"),
])
def test_a_selection_of_nothing_or_an_unknown_category_is_a_usage_error(
    loopback_net: LoopbackNet, tmp_path: Path, category: str | None, content: str | None,
    message: str,
) -> None:
    lst = tmp_path / "my.csv"
    lst.write_text(HEADER + (f"{loopback_net.url('ok.test')},{content},x,,,\n" if content else ""))
    db = tmp_path / "r.db"
    extra = ["--category", category] if category else []
    result = subprocess.run([*_argv(loopback_net, db, str(lst)), *extra], env=_env(tmp_path),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert message in " ".join(result.stderr.split())
    assert "Usage: " in result.stderr
    assert not db.exists() or rows(db, "select count(*) as n from runs")[0]["n"] == 0


def test_a_category_of_the_users_own_list_is_not_a_typo(loopback_net: LoopbackNet, tmp_path: Path) -> None:
    lst = tmp_path / "mine.csv"
    lst.write_text(HEADER + f"{loopback_net.url('ok.test')},MYOWN,x,,,\n"
                   + f"{loopback_net.url('ok.test', '/final')},NEWS,x,,,\n")
    db = tmp_path / "r.db"
    result = subprocess.run([*_argv(loopback_net, db, str(lst)), "--category", "myown"],
                            env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert [r["url"] for r in rows(db, "select url from measurements where final = 1")] == [
        loopback_net.url("ok.test")]
