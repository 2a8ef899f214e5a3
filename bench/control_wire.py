"""CPU of the control protocol's wire format (issues 9 and 16): parse, and build + encode.

    nice -n 15 .venv/bin/python -m bench.control_wire                       # this tree only
    nice -n 15 .venv/bin/python -m bench.control_wire --tree before=/tmp/old --tree after=.

Captures one real answer from the test helper on the loopback network (the test suite's
servers: DNS, an HTTPS site behind a redirect, a trustme CA; a second endpoint that refuses):
the request and measurement the helper built its response from, and the bytes it sent. Then,
for each tree (a directory holding a ``probe`` package, e.g. ``git archive main probe`` of the
commit before a change), a child process imports that tree's ``probe`` and times, in CPU
seconds (``time.process_time``), on the very same inputs:

- parse: the answer's bytes -> the probe's ControlObservation (``parse_response``), and the
  same for ooni/spec's example answer of an OONI helper (``response_2021.json``: 11 headers,
  no ``x_`` keys);
- build + encode: the helper's response from the measurement, as the bytes it sends
  (``build_response`` and the helper's JSON encoding: ``json.dumps`` of a dict before the
  wire types, msgspec of the Structs after).

Trees run alternately, ``--rounds`` times; each figure is the median over rounds of the best
of ``--repeat`` loops of ``--number`` calls. Side by side in one run, so the ratio holds on a
loaded machine where the absolute figures do not. Only 127.0.0.0/8 is contacted.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def capture(path: Path) -> dict[str, Any]:
    """One real answer from the loopback helper: its inputs and its bytes, pickled to ``path``."""
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    import httpx
    import netguard  # the tests' guard: only loopback may be reached from here
    from helper_util import ooni_request, running_helper
    from servers import start_loopback_net

    from probe.core.net import format_endpoint
    from probe.measure.engine import MeasureConfig
    from probe.serve import app
    from probe.serve.app import Helper
    from probe.serve.config import HelperConfig
    netguard.install()
    net = start_loopback_net()
    built: list[tuple[Any, Any, dict[str, Any]]] = []
    real_build = app.build_response

    def recording_build(req: Any, m: Any, **kw: Any) -> Any:
        built.append((req, m, kw))
        return real_build(req, m, **kw)

    app.build_response = recording_build  # type: ignore[assignment]  # record the helper's inputs
    cfg = MeasureConfig(resolvers=(net.resolver,), system_resolver=False, cafile=net.ca_path,
                        late_window=0.0, deadline=10.0, tcp_timeout=3.0, tls_timeout=3.0,
                        http_timeout=5.0)  # fmt: skip
    helper = Helper.with_engine(cfg, HelperConfig(host="127.0.0.1", port=0, allow_private=True))
    url = net.url("redirect.test", tls=True)  # a 302 to https://ok.test/: two hops, TLS, headers
    eps = [format_endpoint(net.web_ip, net.https_port), format_endpoint(net.closed_ip, net.https_port)]

    async def ask() -> bytes:
        async with running_helper(helper) as base, httpx.AsyncClient(trust_env=False) as http:
            resp = await http.post(base, json=ooni_request(url, eps), timeout=30)
            resp.raise_for_status()
            return resp.content

    try:
        raw = asyncio.run(ask())
    finally:
        app.build_response = real_build  # type: ignore[assignment]
        net.close()
    req, m, kw = built[-1]
    kw = {**kw, "asn": None}  # the helper's AS lookup (none without a database): not picklable
    data = {"raw": raw, "req": req, "m": m, "kw": kw, "url": req.url}
    path.write_bytes(pickle.dumps(data))
    return data


def worker(path: Path, number: int, repeat: int) -> dict[str, Any]:
    """Time this interpreter's ``probe`` on the captured inputs (run in a child process)."""
    import probe
    from probe.measure.control.protocol import build_response, parse_response

    data = pickle.loads(path.read_bytes())
    raw, req, m, kw = data["raw"], data["req"], data["m"], data["kw"]
    ooni = (ROOT / "tests" / "fixtures" / "ooni_th" / "response_2021.json").read_bytes()

    def encode(resp: Any) -> bytes:
        if isinstance(resp, dict):  # before the wire types: what the helper did
            return json.dumps(resp, separators=(",", ":")).encode()
        from probe.core.codec import encode_json

        return encode_json(resp)

    def parse() -> Any:
        return parse_response(raw, source="http://127.0.0.1:1/", url=data["url"])

    def parse_ooni() -> Any:
        return parse_response(ooni, source="https://th.example/", url="https://www.example.com/")

    def build() -> bytes:
        return encode(build_response(req, m, **kw))

    def best(fn: Any) -> float:
        times = []
        for _ in range(repeat):
            t0 = time.process_time()
            for _ in range(number):
                fn()
            times.append((time.process_time() - t0) / number)
        return min(times)

    obs = parse()
    assert obs.failure is None and obs.http_status == 200, obs
    return {"probe": str(Path(probe.__file__).parent), "parse_us": best(parse) * 1e6,
            "parse_ooni_us": best(parse_ooni) * 1e6, "build_encode_us": best(build) * 1e6,
            "answer_bytes": len(raw),
            "rebuilt_bytes": len(build())}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=DIR",
                        help="a directory with a probe package to time (repeatable; default: this tree)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(worker(args.worker, args.number, args.repeat)))
        return
    trees = dict(t.split("=", 1) for t in args.tree) or {"this": str(ROOT)}
    with tempfile.TemporaryDirectory() as tmp:
        inputs = Path(tmp) / "answer.pickle"
        data = capture(inputs)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        for _ in range(args.rounds):
            for name, tree in trees.items():
                env = dict(os.environ, PYTHONPATH=str(Path(tree).resolve()))
                out = subprocess.run(
                    # by path, not -m: the tree on PYTHONPATH must come before this one
                    [sys.executable, str(Path(__file__).resolve()), "--worker", str(inputs),
                     "--number", str(args.number), "--repeat", str(args.repeat)],
                    env=env, cwd=ROOT, capture_output=True, text=True,
                )
                if out.returncode != 0:
                    sys.exit(f"timing {name} ({tree}) failed:\n{out.stderr}")
                runs[name].append(json.loads(out.stdout))
    figures: dict[str, Any] = {"answer_bytes": len(data["raw"]), "load_average": os.getloadavg(),
                               "rounds": args.rounds, "trees": {}}  # fmt: skip
    print(f"answer: {len(data['raw'])} bytes from the loopback helper; load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    keys = ("parse_us", "parse_ooni_us", "build_encode_us")
    print(f"{'tree':<10} {'parse µs':>10} {'parse OONI µs':>14} {'build+encode µs':>16}  probe package")
    for name, results in runs.items():
        fig = {k: statistics.median(r[k] for r in results) for k in keys}
        figures["trees"][name] = {**fig, "probe": results[0]["probe"]}
        print(f"{name:<10} {fig['parse_us']:>10.1f} {fig['parse_ooni_us']:>14.1f} "
              f"{fig['build_encode_us']:>16.1f}  {results[0]['probe']}")
    names = list(runs)
    if len(names) >= 2:
        a, b = figures["trees"][names[0]], figures["trees"][names[-1]]
        print(f"{names[-1]} / {names[0]}: " + ", ".join(f"{k.removesuffix('_us')} {b[k] / a[k]:.2f} x"
                                                         for k in keys))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
