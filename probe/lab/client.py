"""Run the probe inside the lab's client namespace, refusing anywhere else.

::

    ip netns exec <prefix>-c python -m probe.lab.client run --url http://clean.lab.example/ ...
    ip netns exec <prefix>-c python -m probe.lab.client measure --out M.jsonl --url ... \\
        [--cafile CA] [--control URL] [--timeouts JSON]

It checks that it runs in one of the lab's namespaces before the probe sends anything. ``run``
hands the rest of its arguments to the ``probe`` command line. ``measure`` drives the engine
directly (``probe.observe.engine.measure`` with the control client) and writes one JSON line per
URL (``{"measurement": ..., "verdict": ... or null}``): the lab uses it while ``probe run``
cannot run (no classifier yet), so that the observation checks still run.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def _measure(args: list[str]) -> int:
    import argparse
    import asyncio
    import json

    from probe.model import to_json
    from probe.observe.engine import MeasureConfig, measure
    from probe.testlists import parse_url

    ap = argparse.ArgumentParser(prog="python -m probe.lab.client measure")
    ap.add_argument("--out", required=True)
    ap.add_argument("--url", action="append", default=[])
    ap.add_argument("--cafile")
    ap.add_argument("--control")
    ap.add_argument("--timeouts", default="{}", help="MeasureConfig fields as JSON")
    ns = ap.parse_args(args)
    cfg = MeasureConfig(cafile=ns.cafile, **json.loads(ns.timeouts))
    from probe.classify import classify

    async def go() -> list[dict[str, object]]:
        from probe.control.client import ControlClient

        out = []
        if ns.control:
            async with ControlClient([ns.control], timeout=30.0, cafile=ns.cafile) as control:
                ms = await asyncio.gather(*(measure(parse_url(u), cfg, control) for u in ns.url))
        else:
            ms = await asyncio.gather(*(measure(parse_url(u), cfg) for u in ns.url))
        for m in ms:
            out.append({"measurement": to_json(m), "verdict": to_json(classify(m))})
        return out

    rows = asyncio.run(go())
    with open(ns.out, "w") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Check the namespace, then run ``probe ARGS...`` (or the engine) in this process."""
    from probe.lab.safety import LabSafetyError, require_lab_namespace

    try:
        require_lab_namespace("the probe's lab traffic")
    except LabSafetyError as exc:
        print(f"probe lab: {exc}", file=sys.stderr)
        return 3
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["measure"]:
        return _measure(args[1:])
    from probe.cli import cli

    try:
        cli.main(args=args, prog_name="probe", standalone_mode=True)
    except SystemExit as exc:
        return int(exc.code or 0) if not isinstance(exc.code, str) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
