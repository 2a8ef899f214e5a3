"""The benchmark's servers, all in the server namespace: nginx (HTTPS), dnsmasq (DNS), helper.

* A lab CA (trustme) and one ECDSA certificate for ``*.bench.test`` (every bench name is
  ``site<i>.bench.test``), written to the run's directory; the client gets the CA as ``--cafile``.
* nginx from Debian (nginx-light), generated config tuned for many short connections: no access
  log, large backlog, many worker connections, no session resumption (every URL pays a full TLS
  handshake, like a probe that measures each URL afresh). It serves the same ~2 KB HTML page
  for every name and path, over HTTP/1.1 on 443 (TLS) and 80.
* dnsmasq answering every ``*.bench.test`` A query with the web server's address (AAAA: no data),
  no cache, no upstream.
* optionally the probe's control helper (``probe helper serve``) when the CLI has it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.topology import BenchNet, in_netns

__all__ = [
    "DOMAIN",
    "MAPPED_ADDRESS",
    "STUN_PORT",
    "WHOAMI_NAME",
    "Services",
    "make_certs",
    "nginx_config",
    "write_url_list",
]

DOMAIN = "bench.test"
STUN_PORT = 3478
#: The public address the bench's STUN server reports (a documentation address, RFC 5737).
MAPPED_ADDRESS = "192.0.2.77"
#: A name whose A answer stands in for the resolver's address (dnsmasq answers every bench name).
WHOAMI_NAME = f"whoami.{DOMAIN}"

_PAGE = (
    "<!doctype html><html><head><title>bench site</title></head><body><h1>bench site</h1>"
    + "<p>" + "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 32 + "</p>"
    + "</body></html>\n"
)  # fmt: skip


def make_certs(directory: Path) -> tuple[Path, Path, Path]:
    """Write ca.pem, server chain and key for ``*.bench.test``; return their paths."""
    from probe.lab.certs import CertAuthority

    ca = CertAuthority("probe bench CA")
    ca_path = Path(ca.write(directory / "ca.pem"))
    chain_path, key_path = ca.leaf_files(directory, "server", f"*.{DOMAIN}", DOMAIN)
    return ca_path, Path(chain_path), Path(key_path)


def nginx_config(directory: Path, ip: str, cert: Path, key: Path, workers: int = 1) -> Path:
    """Generate nginx.conf (and the web root) under ``directory``; return the config path."""
    www = directory / "www"
    www.mkdir(exist_ok=True)
    (www / "index.html").write_text(_PAGE)
    tmp = directory / "nginx-tmp"
    tmp.mkdir(exist_ok=True)
    conf = directory / "nginx.conf"
    conf.write_text(f"""\
user root;
daemon off;
master_process on;
worker_processes {workers};
worker_rlimit_nofile 65536;
pid {directory}/nginx.pid;
error_log {directory}/nginx-error.log warn;
events {{ worker_connections 16384; multi_accept on; }}
http {{
    access_log off;
    sendfile on;
    tcp_nodelay on;
    keepalive_timeout 5s;
    default_type text/html;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache off;
    ssl_session_tickets off;
    server {{
        listen {ip}:443 ssl backlog=8192;
        listen {ip}:80 backlog=8192;
        server_name _;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {www};
        location / {{ try_files /index.html =404; }}
    }}
}}
""")
    return conf


def write_url_list(path: Path, n: int, *, scheme: str = "https", offset: int = 0) -> Path:
    """A Citizen Lab style CSV of ``n`` bench URLs (``scheme://site<i>.bench.test/``)."""
    with path.open("w") as f:
        f.write("url,category_code,category_description,date_added,source,notes\n")
        for i in range(offset, offset + n):
            f.write(f"{scheme}://site{i}.{DOMAIN}/,MISC,Miscellaneous,2026-01-01,bench,\n")
    return path


def _wait_port(
    net: BenchNet, ip: str, port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0
) -> None:
    """Wait until ``ip:port`` accepts TCP, probed from inside the server namespace."""
    probe = (
        "import socket,sys\n"
        f"s=socket.create_connection(('{ip}',{port}),timeout=0.5);s.close()\n"
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server for {ip}:{port} exited with status {proc.returncode}")
        r = subprocess.run(in_netns(net.server, sys.executable, "-c", probe), capture_output=True)
        if r.returncode == 0:
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {ip}:{port} after {timeout}s")


@dataclass
class Services:
    """Start/stop the servers of one benchmark run (a context manager)."""

    net: BenchNet
    directory: Path
    nginx_workers: int = 1
    helper: bool = True
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    ca: Path | None = None
    control_url: str | None = None
    #: Run the helper under pyinstrument, its session written here when it stops.
    helper_profile: Path | None = None
    #: Run the probes' control helper at SCHED_IDLE. Deployed, the helper is another machine;
    #: here it shares the client's two cores, and at normal priority the kernel gives it an
    #: equal share of them whenever the probe wants them too. Idle, it runs on the CPU time
    #: the probe, nginx and dnsmasq leave; a helper that then falls behind still costs the
    #: probe (a slot is held until the control answers). --helper-priority normal turns it off.
    helper_idle: bool = False

    def start(self) -> Services:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, argv: Sequence[str], log: str) -> subprocess.Popen[bytes]:
        out = open(self.directory / log, "wb")  # noqa: SIM115 (the child owns it)
        proc = subprocess.Popen(
            in_netns(self.net.server, *argv), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, cwd=Path(__file__).resolve().parent.parent,  # bench.* modules
        )  # fmt: skip
        out.close()
        self.procs.append(proc)
        return proc

    def _start(self) -> None:
        self.ca, chain, key = make_certs(self.directory)
        conf = nginx_config(self.directory, self.net.web_ip, chain, key, self.nginx_workers)
        nginx = self._spawn(["nginx", "-c", str(conf), "-p", str(self.directory)], "nginx.log")
        dns = self._spawn(
            [
                "dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--no-resolv",
                "--no-hosts", "--bind-interfaces", f"--listen-address={self.net.dns_ip}",
                "--except-interface=lo", "--port=53", f"--address=/{DOMAIN}/{self.net.web_ip}",
                "--cache-size=0", "--user=root", "--group=root", "--pid-file=",
                "--dns-forward-max=10000", "--log-facility=-",
            ],
            "dnsmasq.log",
        )  # fmt: skip
        _wait_port(self.net, self.net.web_ip, 443, nginx)
        if dns.poll() is not None:
            raise RuntimeError(f"dnsmasq exited: {(self.directory / 'dnsmasq.log').read_text()}")
        # The probe learns its network identity at the start and end of a run (STUN, whoami):
        # it gets answers here, never from the public servers it would ask by default. The
        # mapped address stands in for a NAT's public one, so the probe scrubs it as a user's.
        self._spawn([sys.executable, "-m", "bench.stun", "--listen",
                     f"{self.net.helper_ip}:{STUN_PORT}", "--mapped", MAPPED_ADDRESS],
                    "stun.log")  # fmt: skip
        if self.helper and _helper_available():
            # Room for one probe at the highest concurrency benchmarked (C = 256).
            self.control_url = self.start_helper(8080, "helper.log", "--max-in-flight", "1024",
                                                  profile=self.helper_profile,
                                                  idle=self.helper_idle)

    def start_helper(self, port: int, log: str, *extra: str, profile: Path | None = None,
                     idle: bool = False) -> str:
        """Start ``probe helper serve`` on the helper address at ``port``; its URL.

        Its output goes to ``log`` in the run's directory (one line per request). With
        ``profile``, it runs under pyinstrument, which writes its session there when it stops.
        With ``idle``, it runs at Linux's SCHED_IDLE priority: only on CPU time that nothing
        else on the machine wants (see :attr:`helper_idle`).
        """
        assert self.ca is not None
        wrap = ["-m", "pyinstrument", "-r", "pyisession", "-o", str(profile)] if profile else []
        helper = self._spawn(
            [*(["chrt", "--idle", "0"] if idle else []), sys.executable, *wrap,
             "-m", "probe", "helper", "serve",
             "--listen", f"{self.net.helper_ip}:{port}", "--resolver", self.net.dns_ip,
             "--cafile", str(self.ca), "--allow-private", *extra],
            log,
        )  # fmt: skip
        _wait_port(self.net, self.net.helper_ip, port, helper)
        return f"http://{self.net.helper_ip}:{port}"

    def cpu_seconds(self) -> dict[str, float]:
        """user+sys CPU seconds used so far by each server (with its child processes)."""
        tick = os.sysconf("SC_CLK_TCK")
        stats: dict[int, tuple[int, str, float]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat") as f:
                    raw = f.read()
            except OSError:
                continue
            # comm may hold spaces: split after its closing parenthesis.
            comm = raw[raw.index("(") + 1 : raw.rindex(")")]
            rest = raw[raw.rindex(")") + 2 :].split()
            stats[int(entry)] = (int(rest[1]), comm, (int(rest[11]) + int(rest[12])) / tick)
        out: dict[str, float] = {}
        for proc in self.procs:
            if proc.pid not in stats:
                continue
            name = stats[proc.pid][1]
            total = stats[proc.pid][2] + sum(c for ppid, _, c in stats.values() if ppid == proc.pid)
            out[name] = round(out.get(name, 0.0) + total, 2)
        return out

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs:
            try:
                # A helper under pyinstrument writes its session on the way out.
                proc.wait(timeout=60 if self.helper_profile else 5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.procs.clear()

    def __enter__(self) -> Services:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _helper_available() -> bool:
    """True when ``probe helper serve`` exists (the control helper may not be written yet)."""
    r = subprocess.run([sys.executable, "-m", "probe", "helper", "serve", "--help"], capture_output=True)
    return r.returncode == 0
