"""probe: a network censorship measurement probe.

Measures DNS, TCP, TLS and HTTP reachability step by step, compares what it saw with a
control, and stores raw observations and verdicts in SQLite.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
