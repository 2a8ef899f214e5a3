"""Installs the tests' network guard in Python subprocesses started by the test suite."""

import os
import sys

if os.environ.get("PROBE_NETGUARD") == "1":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    import netguard

    netguard.install()
