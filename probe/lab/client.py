"""Run the probe inside the lab's client namespace, refusing anywhere else.

::

    ip netns exec <prefix>-c python -m probe.lab.client run --url http://clean.lab.example/ ...

It checks that it runs in one of the lab's namespaces before the probe sends anything, then
replaces itself with ``python -m probe ARGS...`` (the lab never imports the command line: it sits
below it).
"""

from __future__ import annotations

import os
import sys

from probe.lab.safety import LabSafetyError, require_lab_namespace

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Check the namespace, then exec ``probe ARGS...`` in this process (no return)."""
    try:
        require_lab_namespace("the probe's lab traffic")
    except LabSafetyError as exc:
        print(f"probe lab: {exc}", file=sys.stderr)
        return 3
    args = list(sys.argv[1:] if argv is None else argv)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, "-m", "probe", *args])


if __name__ == "__main__":
    sys.exit(main())
