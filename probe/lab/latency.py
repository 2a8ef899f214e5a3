"""The lab's latency knob: delay forwarded packets with NFQUEUE (there is no ``tc netem`` here).

Two halves:

* a delay program, run inside a namespace (normally the router between client and servers)::

      ip netns exec ROUTER python -m probe.lab.latency --queue 0 --delay-ms 50

  It binds NFQUEUE ``N`` and releases every queued packet ``delay`` after it arrived. Packets are
  kept in arrival order and released by one timer loop (epoll on the queue's socket with a timeout
  set to the next due packet), never by a sleep per packet, so it keeps up with thousands of
  packets per second. It asks the kernel for metadata only (no payload copy). On SIGTERM/SIGINT it
  releases whatever is still held, prints one JSON line of statistics (packets, how late releases
  were) and exits 0.

* a small Python API that installs/removes the iptables rules that feed the queue
  (``-t mangle -A FORWARD -o IFACE -j NFQUEUE --queue-num N --queue-bypass``; with
  ``--queue-bypass`` traffic flows undelayed whenever no program is bound, instead of stopping)
  and that starts/stops the program, for one namespace and one or more interfaces::

      from probe.lab.latency import Delay

      with Delay("lab-router", ["veth-client", "veth-server"], delay_ms=50):
          ...  # every packet forwarded out of either interface waits 50 ms: RTT + 100 ms

  Delaying both directions by D adds 2 x D to every round trip. One queue (and one program) per
  interface, so the two directions run on different cores.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import math
import os
import random
import select
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Delay",
    "DelayStats",
    "install_delay_rule",
    "main",
    "remove_delay_rule",
    "run_delay",
    "start_delay_program",
    "stop_delay_program",
]

#: Kernel-side queue length: packets held at once. At 100 ms and 10,000 packets/s a direction
#: holds about 500; the margin keeps a burst from being dropped (a drop would look like loss).
DEFAULT_MAX_LEN = 65536
#: Receive buffer of the netlink socket. Metadata-only messages are small (~150 bytes).
DEFAULT_RCVBUF = 16 << 20

_READY = "ready"


@dataclass
class DelayStats:
    """What the delay program did, reported when it stops.

    ``late_*`` is how much later than scheduled a packet was released (the delay's own error,
    in milliseconds, percentiles at 0.1 ms resolution); a program that keeps up shows a p99
    around a millisecond.
    """

    queue: int = 0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    packets: int = 0
    max_held: int = 0  # most packets held at once
    late_p50_ms: float = 0.0
    late_p99_ms: float = 0.0
    late_max_ms: float = 0.0
    queue_dropped: int = 0  # the kernel queue was full (from /proc/net/netfilter/nfnetlink_queue)
    user_dropped: int = 0  # the netlink socket buffer overflowed
    cpu_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-able figures."""
        return dict(self.__dict__)


# --- the delay program --------------------------------------------------------------------------


_BIN = 1e-4  # lateness histogram resolution: 0.1 ms
_NBINS = 2001  # up to 200 ms; the last bin collects the rest


def _percentile(bins: Sequence[int], total: int, q: float) -> float:
    """Upper edge (ms) of the histogram bin holding the q-quantile."""
    if not total:
        return 0.0
    rank = max(1, math.ceil(q * total))
    seen = 0
    for i, n in enumerate(bins):
        seen += n
        if seen >= rank:
            return (i + 1) * _BIN * 1000
    return len(bins) * _BIN * 1000


def _kernel_drops(queue: int) -> tuple[int, int]:
    """(queue_dropped, user_dropped) of ``queue`` in this namespace, (0, 0) if unknown."""
    try:
        with open("/proc/net/netfilter/nfnetlink_queue") as f:
            for line in f:
                cols = line.split()
                if len(cols) >= 7 and cols[0] == str(queue):
                    return int(cols[5]), int(cols[6])
    except OSError:
        pass
    return 0, 0


def run_delay(
    queue: int,
    delay_ms: float,
    *,
    jitter_ms: float = 0.0,
    max_len: int = DEFAULT_MAX_LEN,
    rcvbuf: int = DEFAULT_RCVBUF,
    ready: Any = None,
    should_stop: Any = None,
) -> DelayStats:
    """Bind NFQUEUE ``queue`` in the current namespace and delay its packets until stopped.

    Each packet is released ``delay_ms`` (plus a uniform random ``0..jitter_ms``) after it was
    read from the queue. Release times never go backwards, so jitter does not reorder packets
    (TCP would otherwise see spurious reordering). ``ready()`` is called once the queue is bound;
    the loop ends when ``should_stop()`` returns true (checked at least every 100 ms) and then
    releases everything still held. Returns the statistics.
    """
    from netfilterqueue import COPY_META, NetfilterQueue  # the `lab` extra

    delay = delay_ms / 1000.0
    jitter = jitter_ms / 1000.0
    held: collections.deque[tuple[float, Any]] = collections.deque()
    stats = DelayStats(queue=queue, delay_ms=delay_ms, jitter_ms=jitter_ms)
    bins = [0] * _NBINS
    late_max = 0.0
    clock = time.monotonic
    last_due = 0.0
    count = 0

    def on_packet(pkt: Any) -> None:
        nonlocal last_due
        due = clock() + delay
        if jitter:
            due += random.uniform(0.0, jitter)
            if due < last_due:
                due = last_due
            last_due = due
        held.append((due, pkt))

    nfq = NetfilterQueue()
    with warnings.catch_warnings():
        # It warns when rmem_max caps the buffer; SO_RCVBUFFORCE below lifts the cap.
        warnings.simplefilter("ignore", RuntimeWarning)
        nfq.bind(queue, on_packet, max_len=max_len, mode=COPY_META, range=0, sock_len=rcvbuf // 2)
    fd = nfq.get_fd()
    # The library asks for a buffer within rmem_max; as root, force a big one so bursts fit.
    with contextlib.suppress(OSError):
        s = socket.socket(fileno=os.dup(fd))
        try:
            s.setsockopt(socket.SOL_SOCKET, 33, rcvbuf)  # SO_RCVBUFFORCE
        finally:
            s.close()
    ep = select.epoll()
    ep.register(fd, select.EPOLLIN)
    if ready is not None:
        ready()
    cpu0 = time.process_time()
    try:
        while True:
            if should_stop is not None and should_stop():
                break
            if held:
                # Round up: waking early would spin; a release at most 1 ms late is fine.
                timeout = max(0.0, held[0][0] - clock())
                timeout = math.ceil(timeout * 1000) / 1000
                timeout = min(timeout, 0.1)
            else:
                timeout = 0.1
            if ep.poll(timeout):
                nfq.run(block=False)
            now = clock()
            while held and held[0][0] <= now:
                due, pkt = held.popleft()
                pkt.accept()
                count += 1
                lateness = now - due
                bins[min(_NBINS - 1, int(lateness / _BIN))] += 1
                if lateness > late_max:
                    late_max = lateness
            if len(held) > stats.max_held:
                stats.max_held = len(held)
    finally:
        while held:
            held.popleft()[1].accept()
            count += 1
        stats.queue_dropped, stats.user_dropped = _kernel_drops(queue)
        ep.close()
        nfq.unbind()
    stats.packets = count
    stats.cpu_s = round(time.process_time() - cpu0, 3)
    released = sum(bins)
    stats.late_p50_ms = round(_percentile(bins, released, 0.5), 3)
    stats.late_p99_ms = round(_percentile(bins, released, 0.99), 3)
    stats.late_max_ms = round(late_max * 1000, 3)
    return stats


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m probe.lab.latency --queue N --delay-ms D``: run the delay program."""
    ap = argparse.ArgumentParser(
        prog="python -m probe.lab.latency",
        description="Delay the packets of one NFQUEUE (run as root inside the namespace whose "
        "iptables rules feed the queue). Prints 'ready' once bound, and one JSON line of "
        "statistics when stopped with SIGTERM or SIGINT.",
    )
    ap.add_argument("--queue", type=int, required=True, help="NFQUEUE number")
    ap.add_argument("--delay-ms", type=float, required=True, help="delay added to each packet")
    ap.add_argument("--jitter-ms", type=float, default=0.0, help="extra uniform random delay")
    ap.add_argument("--max-len", type=int, default=DEFAULT_MAX_LEN, help="kernel queue length")
    ap.add_argument("--realtime", action="store_true",
                    help="run with SCHED_FIFO priority, so that a busy machine (the client and "
                    "servers of a benchmark) does not make releases late")  # fmt: skip
    args = ap.parse_args(argv)
    if args.delay_ms < 0 or args.jitter_ms < 0:
        ap.error("--delay-ms and --jitter-ms must be >= 0")
    if args.realtime:
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
        except OSError as exc:
            print(f"warning: --realtime refused ({exc}); running at normal priority", file=sys.stderr)

    stop = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def ready() -> None:
        print(_READY, flush=True)

    try:
        stats = run_delay(
            args.queue,
            args.delay_ms,
            jitter_ms=args.jitter_ms,
            max_len=args.max_len,
            ready=ready,
            should_stop=lambda: stop,
        )
    except OSError as exc:
        print(f"error: cannot bind NFQUEUE {args.queue}: {exc} (root? namespace?)", file=sys.stderr)
        return 1
    print(json.dumps(stats.as_dict()), flush=True)
    return 0


# --- rules and process management ---------------------------------------------------------------


def _netns_cmd(netns: str | None, argv: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *argv] if netns else list(argv)


def _rule(iface: str, queue: int, op: str) -> list[str]:
    return [
        "-t", "mangle", op, "FORWARD",
        "-o", iface, "-j", "NFQUEUE", "--queue-num", str(queue), "--queue-bypass",
    ]  # fmt: skip


def install_delay_rule(netns: str | None, iface: str, queue: int) -> None:
    """Send packets forwarded out of ``iface`` in ``netns`` to NFQUEUE ``queue`` (with bypass).

    ``netns=None`` means the current namespace. Idempotent: an identical rule is not added twice.
    """
    check = _netns_cmd(netns, ["iptables", *_rule(iface, queue, "-C")])
    if subprocess.run(check, capture_output=True).returncode == 0:
        return
    subprocess.run(_netns_cmd(netns, ["iptables", *_rule(iface, queue, "-A")]), check=True,
                   capture_output=True)  # fmt: skip


def remove_delay_rule(netns: str | None, iface: str, queue: int) -> None:
    """Remove the rule added by :func:`install_delay_rule` (no error if it is absent)."""
    while (
        subprocess.run(
            _netns_cmd(netns, ["iptables", *_rule(iface, queue, "-D")]), capture_output=True
        ).returncode
        == 0
    ):
        pass


def start_delay_program(
    netns: str | None,
    queue: int,
    delay_ms: float,
    *,
    jitter_ms: float = 0.0,
    realtime: bool = False,
    timeout: float = 10.0,
) -> subprocess.Popen[str]:
    """Start ``python -m probe.lab.latency`` in ``netns`` and wait until its queue is bound."""
    argv = [sys.executable, "-m", "probe.lab.latency", "--queue", str(queue),
            "--delay-ms", str(delay_ms), "--jitter-ms", str(jitter_ms)]  # fmt: skip
    if realtime:
        argv.append("--realtime")
    proc = subprocess.Popen(
        _netns_cmd(netns, argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    line = proc.stdout.readline().strip() if ready else ""
    if line != _READY:
        proc.kill()
        _, err = proc.communicate()
        raise RuntimeError(f"delay program for queue {queue} did not start: {line or err.strip()}")
    return proc


def stop_delay_program(proc: subprocess.Popen[str], timeout: float = 5.0) -> DelayStats | None:
    """Stop a program from :func:`start_delay_program`; return its statistics if it printed them."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return None
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            data = json.loads(line)
            return DelayStats(**data)
    return None


class Delay:
    """Add ``delay_ms`` to every packet forwarded out of each of ``ifaces`` in ``netns``.

    A context manager (or ``start()``/``stop()``). One NFQUEUE per interface, numbered from
    ``queue``, each served by its own delay program. The rules use ``--queue-bypass``: if a
    program dies, traffic keeps flowing without delay. ``set_delay()`` changes the delay by
    restarting the programs (packets pass undelayed for the few milliseconds in between).
    ``stop()`` removes the rules and returns one :class:`DelayStats` per interface.
    ``realtime=True`` runs the programs with SCHED_FIFO priority: on a machine kept busy by the
    traffic itself (a benchmark), releases then stay within a millisecond or so of schedule.
    """

    def __init__(
        self,
        netns: str | None,
        ifaces: Sequence[str],
        delay_ms: float,
        *,
        queue: int = 0,
        jitter_ms: float = 0.0,
        realtime: bool = False,
    ) -> None:
        self.netns = netns
        self.ifaces = tuple(ifaces)
        self.delay_ms = delay_ms
        self.jitter_ms = jitter_ms
        self.realtime = realtime
        self.queues = tuple(range(queue, queue + len(self.ifaces)))
        self._procs: list[subprocess.Popen[str]] = []
        self._rules: list[tuple[str, int]] = []

    def start(self) -> Delay:
        """Start the programs, then install the rules (so no packet waits on an unbound queue)."""
        try:
            for q in self.queues:
                self._procs.append(
                    start_delay_program(
                        self.netns, q, self.delay_ms, jitter_ms=self.jitter_ms, realtime=self.realtime
                    )
                )
            for iface, q in zip(self.ifaces, self.queues, strict=True):
                install_delay_rule(self.netns, iface, q)
                self._rules.append((iface, q))
        except BaseException:
            self.stop()
            raise
        return self

    def set_delay(self, delay_ms: float, jitter_ms: float | None = None) -> None:
        """Change the delay (restarts the programs; the rules stay)."""
        self.delay_ms = delay_ms
        if jitter_ms is not None:
            self.jitter_ms = jitter_ms
        for i, q in enumerate(self.queues):
            if i < len(self._procs):
                stop_delay_program(self._procs[i])
                self._procs[i] = start_delay_program(
                    self.netns, q, self.delay_ms, jitter_ms=self.jitter_ms, realtime=self.realtime
                )

    def stop(self) -> list[DelayStats]:
        """Remove the rules and stop the programs. Safe to call twice."""
        for iface, q in self._rules:
            with contextlib.suppress(Exception):
                remove_delay_rule(self.netns, iface, q)
        self._rules.clear()
        stats = []
        for proc in self._procs:
            s = stop_delay_program(proc)
            if s is not None:
                stats.append(s)
        self._procs.clear()
        return stats

    def __enter__(self) -> Delay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
