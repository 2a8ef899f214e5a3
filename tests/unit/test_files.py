"""read_bounded: the one way probe reads a user's small file (config, endpoint lists)."""

from __future__ import annotations

from pathlib import Path

import pytest

from probe.host.files import read_bounded


class _Bad(Exception):
    pass


def test_a_file_within_the_limit_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "ok.txt"
    path.write_bytes(b"x" * 10)
    assert read_bounded(path, 10, what="a list", error=_Bad) == b"x" * 10


def test_one_byte_over_the_limit_is_refused_naming_the_file_and_what_it_should_be(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * 11)
    with pytest.raises(_Bad, match=r"big\.txt: larger than 10 bytes: not a list"):
        read_bounded(path, 10, what="a list", error=_Bad)


def test_an_endless_device_is_refused_after_limit_plus_one_bytes() -> None:
    with pytest.raises(_Bad, match=r"/dev/zero: larger than 1 MiB: not a config file"):
        read_bounded(Path("/dev/zero"), 1 << 20, what="a config file", error=_Bad)


def test_an_unreadable_path_raises_the_callers_error(tmp_path: Path) -> None:
    with pytest.raises(_Bad, match=r"missing: cannot read: No such file"):
        read_bounded(tmp_path / "missing", 10, what="a list", error=_Bad)
