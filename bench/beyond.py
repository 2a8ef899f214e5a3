"""Figures for docs/bench.md, "beyond blocking" (root: it builds a lab of its own).

    sudo .venv/bin/python -m bench.beyond                 # both parts
    sudo .venv/bin/python -m bench.beyond --only circumvention --endpoints 100 --rtt-ms 100
    sudo .venv/bin/python -m bench.beyond --only throttling --repeat 3

- **circumvention**: `probe circumvention` over N endpoints (a third each Tor-like TLS relays,
  OpenVPN over TCP, OpenVPN over UDP) served in the lab's server namespace, at the given
  round-trip time (NFQUEUE delay on the censor), with the lab's control helper: wall time and
  endpoints per second, next to the floor of one round trip per endpoint at that concurrency.
- **throttling**: the benign look-alikes (a server slow for everyone, a slow network for
  everyone) repeated R times, counting false ``throttled`` verdicts (target 0), and a censor
  policing one site's TLS connections at several rates, with the slowdown each caused and
  whether it was found.

Every packet stays inside the lab's namespaces. Figures depend on the machine's load.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _endpoints(lab: Any, tmp: Path, n: int) -> tuple[Path, subprocess.Popen[bytes]]:
    from probe.lab.certs import CertAuthority
    from probe.lab.topology import ns_run

    CertAuthority("untrusted relay CA").leaf_files(tmp, "relay", "relay.invalid")  # nobody trusts it
    ip = "10.66.2.210"
    ns_run(lab.topo.server, ["ip", "addr", "add", f"{ip}/32", "dev", "s0"], check=False)
    tls_ports = list(range(20000, 20000 + (n + 2) // 3))
    vpn_ports = list(range(21000, 21000 + (n + 2) // 3))
    argv = [sys.executable, "-m", "probe.lab.toolservers", "--cert", str(tmp / "relay.pem"),
            "--key", str(tmp / "relay.key")]  # fmt: skip
    for p in tls_ports:
        argv += ["--tls", f"{ip}:{p}"]
    for p in vpn_ports:
        argv += ["--openvpn", f"{ip}:{p}"]
    proc = subprocess.Popen(["ip", "netns", "exec", lab.topo.server, *argv], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)  # fmt: skip
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
    rows = ["kind,name,address,port"]
    rows += [f"tor,relay-{p},{ip},{p}" for p in tls_ports]
    rows += [f"openvpn-tcp,vpn-tcp-{p},{ip},{p}" for p in vpn_ports]
    rows += [f"openvpn-udp,vpn-udp-{p},{ip},{p}" for p in vpn_ports]
    lst = tmp / "endpoints.csv"
    lst.write_text("\n".join(rows[: n + 1]) + "\n")
    return lst, proc


def circumvention(lab: Any, n: int, rtt_ms: float, concurrency: int, control: bool = True) -> dict[str, Any]:
    """Time `probe circumvention` over ``n`` lab endpoints at ``rtt_ms`` (with the lab's control
    helper, or with --no-control)."""
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        lst, proc = _endpoints(lab, tmp, n)
        lab.set_latency(rtt_ms / 2)
        try:
            ctl = ["--control", lab.control_url] if control else ["--no-control"]
            argv = ["circumvention", str(lst), "--db", str(tmp / "c.db"), "--vantage", "bench", *ctl,
                    "--cafile", lab.cafile, "--accept-risks", "--json",
                    "--concurrency", str(concurrency)]  # fmt: skip
            t0 = time.monotonic()
            done = subprocess.run(lab.client_argv(argv), capture_output=True, text=True, timeout=600)
            wall = time.monotonic() - t0
        finally:
            lab.set_latency(0)
            proc.kill()
            proc.wait()
        rows = [json.loads(line) for line in done.stdout.splitlines()]
        con = sqlite3.connect(tmp / "c.db")
        per_kind = {k: round(t, 3) for k, t in con.execute(
            "SELECT kind, avg(runtime) FROM endpoint_measurements GROUP BY kind")}  # fmt: skip
        # Endpoints whose stored result is a retry: the first attempt failed while the control
        # reached the endpoint (a stall through the lab's delay would show here).
        retried = con.execute("SELECT count(*) FROM endpoint_measurements "
                              "WHERE json_extract(observation, '$.attempt') > 0").fetchone()[0]
        slowest = {k: round(t, 3) for k, t in con.execute(
            "SELECT kind, max(runtime) FROM endpoint_measurements GROUP BY kind")}  # fmt: skip
        con.close()
        verdicts: dict[str, int] = {}
        for r in rows:
            verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
        # The floor: one round trip per endpoint, `concurrency` at a time (TCP alone costs that).
        floor = (n / concurrency) * rtt_ms / 1000
        return {"control": control, "endpoints": len(rows), "rtt_ms": rtt_ms, "concurrency": concurrency,
                "wall_s": round(wall, 2), "per_s": round(len(rows) / wall, 1),
                "one_rtt_floor_s": round(floor, 2), "probe_s_per_endpoint": per_kind,
                "probe_s_slowest": slowest, "retried": retried,
                "verdicts": verdicts, "exit": done.returncode}  # fmt: skip


def _throttle_run(lab: Any, tmp: Path, name: str) -> dict[str, tuple[str, list[str]]]:
    from probe.lab.sites import DOMAIN

    refs = ("clean", "tls-rst", "tls-drop", "http-rst", "http-drop")
    urls = [f"https://{s}.{DOMAIN}/large/128" for s in (*refs, "tls-fin")]
    urls.append(f"https://trickle.{DOMAIN}/")
    db = tmp / f"{name}.db"
    lab.probe(urls, db, extra=["--http-timeout", "40", "--deadline", "60"])
    con = sqlite3.connect(db)
    rows = con.execute("SELECT domain, verdict, reasons FROM measurements WHERE final = 1").fetchall()
    con.close()
    return {d.split(".")[0]: (v, json.loads(r)) for d, v, r in rows}


def _slowdown(reasons: list[str]) -> str:
    for r in reasons:
        if r.startswith(("http/throttled:", "http/slow:")):
            return r.split(":", 1)[1]
    return "< 10x"


def throttling(lab: Any, repeat: int) -> dict[str, Any]:
    """False positives over benign look-alikes, and detection against policing rates."""
    from probe.lab.scenarios import Censor

    out: dict[str, Any] = {"benign_runs": 0, "benign_urls": 0, "false_throttled": 0, "detection": []}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for i in range(repeat):
            for name, bandwidth in (("slow-server", None), ("slow-network", "4mbit")):
                lab.set_bandwidth(bandwidth)
                try:
                    got = _throttle_run(lab, tmp, f"{name}-{i}")
                finally:
                    lab.set_bandwidth(None)
                out["benign_runs"] += 1
                out["benign_urls"] += len(got)
                out["false_throttled"] += sum(1 for v, _ in got.values() if v == "throttled")
        for rate in ("8kb", "32kb", "128kb", "512kb"):
            lab.apply(Censor(forward=(
                "-p tcp --dport 443 -m string --algo bm --string tls-fin.lab.example "
                "-j CONNMARK --set-mark 0x7",
                f"-p tcp --sport 443 -m connmark --mark 0x7 -m hashlimit --hashlimit-above {rate}/s "
                f"--hashlimit-burst {rate} --hashlimit-mode srcip,srcport,dstip,dstport "
                "--hashlimit-name benchthr -j DROP",
            )))  # fmt: skip
            try:
                got = _throttle_run(lab, tmp, f"police-{rate}")
            finally:
                lab.reset()
            verdict, reasons = got["tls-fin"]
            found = {"policed_to": f"{rate}/s", "verdict": verdict, "slowdown": _slowdown(reasons)}
            out["detection"].append(found)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("circumvention", "throttling"))
    ap.add_argument("--endpoints", type=int, default=100)
    ap.add_argument("--rtt-ms", type=float, default=100.0)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    from probe.lab.lab import Lab

    with Lab.create() as lab:
        if args.only in (None, "circumvention"):
            for control in (False, True):
                figures = circumvention(lab, args.endpoints, args.rtt_ms, args.concurrency, control)
                print(json.dumps({"circumvention": figures}))
        if args.only in (None, "throttling"):
            print(json.dumps({"throttling": throttling(lab, args.repeat)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
