"""The base of probe's own exceptions, and how bad each kind is.

Every exception class probe defines derives from :class:`ProbeError` (and, where it had one,
from the standard exception it has always been: a :class:`~probe.core.codec.CodecError` is
still a ``ValueError``). Its message is written for people: it names the file and line, the
flag or the database concerned. The command line turns one into an error message and an exit
status in one place (:mod:`probe.cli._group`): ``usage`` errors (bad input given by the user,
exit 2) show how the command is used; the others exit with ``exit_code`` (1, a probe error,
unless the class says otherwise).

Failures of the network are not exceptions but data (:mod:`probe.core.failures`).
"""

from __future__ import annotations

from typing import ClassVar

__all__ = ["ProbeError", "ProbeUsageError"]


class ProbeError(Exception):
    """An error of probe's, with a message for people."""

    #: Exit status of a command that ends with this error.
    exit_code: ClassVar[int] = 1
    #: True for bad input given by the user (a list, a flag, the config file): exit 2, with
    #: the command's usage.
    usage: ClassVar[bool] = False


class ProbeUsageError(ProbeError):
    """Bad input given by the user: a usage error (exit 2)."""

    exit_code: ClassVar[int] = 2
    usage: ClassVar[bool] = True
