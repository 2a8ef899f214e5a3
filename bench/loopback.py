"""Wall time and peak memory of `probe run` over N URLs against loopback servers.

    .venv/bin/python -m bench.loopback --urls 1000 --concurrency 32

Starts the test suite's loopback servers (DNS on 127.0.0.53, HTTP and HTTPS on 127.0.0.2, a
trustme CA) in this process, writes a test list of N distinct URLs over a few names, runs
`probe run` on it as a child process with the loopback resolver and no control, and prints
wall time, URLs/s, CPU per URL and the child's peak RSS. Loopback has no latency, so this
measures the probe's own cost, not the network: the lab benchmark (bench.throughput) does that.
Only 127.0.0.0/8 is contacted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from bench.children import run_child  # noqa: E402


def write_list(path: Path, urls: int, net: object) -> None:
    names = ["ok.test", "www.ok.test", "redirect.test"]
    with path.open("w") as fh:
        fh.write("url,category_code,category_description,date_added,source,notes\n")
        for i in range(urls):
            name = names[i % len(names)]
            tls = i % 2 == 0
            path_ = "/same" if name == "redirect.test" else "/"
            fh.write(f"{net.url(name, path_, tls=tls)}?i={i},NEWS,News,,,\n")  # type: ignore[attr-defined]


def help_time(runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "probe", "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--control", action="store_true",
                        help="run `probe helper serve` on loopback and use it as the control")
    args = parser.parse_args()

    import netguard  # the tests' guard: only loopback may be reached from here
    from servers import start_loopback_net

    netguard.install()
    net = start_loopback_net()
    helper = None
    control = ["--no-control"]
    if args.control:
        port = 18000 + os.getpid() % 1000
        helper = subprocess.Popen(
            [sys.executable, "-m", "probe", "helper", "serve", "--listen", f"127.0.0.1:{port}",
             "--resolver", net.resolver, "--cafile", net.ca_path, "--allow-private"],
            stderr=subprocess.DEVNULL,
        )
        time.sleep(2)
        control = ["--control", f"http://127.0.0.1:{port}/"]
    with tempfile.TemporaryDirectory() as tmp:
        lst = Path(tmp) / "list.csv"
        write_list(lst, args.urls, net)
        env = dict(os.environ, PROBE_CONFIG_DIR=tmp, PROBE_NETGUARD="1",
                   PYTHONPATH=str(ROOT / "tests" / "netguard_site"))
        cmd = [sys.executable, "-m", "probe", "run", str(lst), "--resolver", net.resolver,
               *control, "--cafile", net.ca_path, "--accept-risks", "--db", f"{tmp}/r.db",
               "--concurrency", str(args.concurrency), "--per-host", str(args.concurrency),
               "--no-progress"]
        r = run_child(cmd, timeout=4 * 3600, env=env, workdir=Path(tmp), cwd=ROOT)
        out = r.stdout
        if r.returncode != 0 or r.timed_out:
            sys.exit(f"probe run failed:\n{out}\n{r.stderr}")
    if helper is not None:
        helper.terminate()
        helper.wait()
    net.close()
    wall, cpu = r.wall_s, r.cpu_s
    figures = {
        "urls": args.urls,
        "concurrency": args.concurrency,
        "control": args.control,
        "cores": os.cpu_count(),
        "wall_s": round(wall, 2),
        "urls_per_s": round(args.urls / wall, 1),
        "cpu_ms_per_url": round(1000 * cpu / args.urls, 2),
        "peak_rss_mb": round(r.maxrss_mb, 1),
        "help_s": round(help_time(), 3),
        "server_cpu_s": round(sum(resource.getrusage(resource.RUSAGE_SELF)[:2]), 2),
    }
    print(out.strip())
    print()
    for key, value in figures.items():
        print(f"{key:<16} {value}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
