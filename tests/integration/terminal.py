"""Run a command on a pseudo-terminal of a given size, as a volunteer's terminal would: on a
bare pty (:func:`run_on_pty`) or in a tmux pane with a shell (:class:`Tmux`)."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shlex
import struct
import subprocess
import termios
import time
from collections.abc import Callable
from pathlib import Path


def run_on_pty(args: list[str], env: dict[str, str], cols: int = 80, rows: int = 24,
               timeout: float = 120.0) -> tuple[int, str]:
    """Run ``args`` with stdin, stdout and stderr on a new pty of ``cols`` x ``rows``.

    Returns the exit status and everything written to the terminal (escape codes included).
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    env = dict(env, COLUMNS=str(cols), LINES=str(rows), TERM="xterm-256color")
    proc = subprocess.Popen(args, stdin=slave, stdout=slave, stderr=slave, env=env,
                            close_fds=True, start_new_session=True)
    os.close(slave)
    out = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every writer closed its end
                    break
                if not data:
                    break
                out += data
            elif proc.poll() is not None:
                break
        else:
            proc.kill()
            raise TimeoutError(f"{args[:4]} did not finish in {timeout} s")
        return proc.wait(timeout=10), out.decode("utf-8", "replace")
    finally:
        os.close(master)


class Tmux:
    """A shell in a tmux pane of ``cols`` x ``rows``, as a volunteer's terminal: type a command,
    read back what it left on the screen (wrapped lines joined), and the raw bytes written to
    the terminal (escape sequences included), from ``pipe-pane``."""

    PROMPT = "volunteer$ "
    _DONE = re.compile(r"^\[exit (\d+)\]$", re.M)

    def __init__(self, workdir: Path, cwd: Path, env: dict[str, str], cols: int = 80,
                 rows: int = 24) -> None:
        self.sock = workdir / "tmux.sock"
        self.raw = workdir / "terminal.raw"
        self.cols = cols
        shell_env = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
        self._tmux("-f", "/dev/null", "new-session", "-d", "-s", "v", "-x", str(cols), "-y", str(rows),
                   "-c", str(cwd), f"env -i {shell_env} PS1={shlex.quote(self.PROMPT)} "
                   "bash --norc --noprofile -i")
        self._tmux("set-option", "-t", "v", "history-limit", "50000")
        self._tmux("set-option", "-s", "set-clipboard", "on")  # an OSC 52 would fill a buffer
        self._tmux("pipe-pane", "-o", "-t", "v", f"cat >> {shlex.quote(str(self.raw))}")
        self.wait_for(lambda: self.screen().rstrip().endswith(self.PROMPT.rstrip()), 20)
        self._done = 0

    def _tmux(self, *args: str) -> str:
        return subprocess.run(["tmux", "-S", str(self.sock), *args], check=True,
                              capture_output=True, text=True, timeout=30).stdout

    def screen(self) -> str:
        """What the pane shows now."""
        return self._tmux("capture-pane", "-p", "-J", "-t", "v")

    def history(self) -> str:
        """Everything the pane showed, wrapped lines joined (a line longer than the pane is a
        line that wrapped)."""
        return self._tmux("capture-pane", "-p", "-J", "-S", "-", "-E", "-", "-t", "v")

    def title(self) -> str:
        """The pane's title (what OSC 0 and OSC 2 set)."""
        return self._tmux("display", "-p", "-t", "v", "#{pane_title}").strip()

    def buffers(self) -> str:
        """tmux's paste buffers (what OSC 52 writes, with set-clipboard on)."""
        return self._tmux("list-buffers")

    def keys(self, *keys: str) -> None:
        """Press keys (tmux key names: ``C-c``, ``Enter``, or text)."""
        self._tmux("send-keys", "-t", "v", *keys)

    @staticmethod
    def wait_for(check: Callable[[], object], timeout: float) -> object:
        """Poll ``check()`` until it returns something truthy (a condition, not a fixed sleep)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = check()
            if got:
                return got
            time.sleep(0.1)
        raise AssertionError(f"condition not met in {timeout} s")

    def type(self, command: str) -> None:
        """Type ``command`` and Enter; the shell then prints ``[exit N]`` when it ends."""
        self._tmux("send-keys", "-t", "v", "-l", f'{command}; echo "[exit $?]"')
        self.keys("Enter")

    def finish(self, timeout: float = 180) -> tuple[int, list[str]]:
        """Wait for the command typed last to end: its exit status and the lines it left."""
        n = self._done + 1
        found = self.wait_for(lambda: (m := self._DONE.findall(self.history())) and len(m) >= n and m,
                              timeout)
        assert isinstance(found, list)
        self._done = n
        history = self.history().splitlines()
        ends = [i for i, line in enumerate(history) if self._DONE.match(line)]
        end = ends[n - 1]
        start = max(i for i, line in enumerate(history[:end]) if line.startswith(self.PROMPT))
        return int(found[n - 1]), history[start + 1:end]

    def run(self, command: str, timeout: float = 180) -> tuple[int, list[str]]:
        """Type ``command``, wait for it to end: its exit status and the lines it left."""
        self.type(command)
        return self.finish(timeout)

    def close(self) -> None:
        subprocess.run(["tmux", "-S", str(self.sock), "kill-server"], capture_output=True, timeout=30)
