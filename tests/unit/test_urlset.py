"""URLSet: the set, bounded in memory, that de-duplicates streamed test lists."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc

import pytest

from probe.store.urlset import URLSet


def test_add_reports_new_and_repeated_urls() -> None:
    seen = URLSet()
    assert seen.add("http://a.example/")
    assert not seen.add("http://a.example/")
    assert seen.add("http://a.example/x")  # another path is another URL
    assert seen.add("https://a.example/")  # another scheme too
    assert len(seen) == 3
    assert "http://a.example/x" in seen
    assert "http://b.example/" not in seen
    assert 42 not in seen


def test_every_url_is_remembered_across_growth() -> None:
    seen = URLSet()
    urls = [f"https://n{i}.example/{i % 7}" for i in range(50_000)]
    assert all(seen.add(u) for u in urls)
    assert len(seen) == len(urls)
    assert not any(seen.add(u) for u in urls)
    assert all(u in seen for u in urls[::97])
    assert f"https://n{len(urls)}.example/0" not in seen


@pytest.mark.slow  # a memory budget
def test_memory_per_url_is_a_fraction_of_a_python_set() -> None:
    urls = [f"https://n{i}.example/" for i in range(100_000)]
    tracemalloc.start()
    try:
        seen = URLSet()
        for u in urls:
            seen.add(u)
        compact = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    # Python objects only (SQLite's cache is not traced): ~9 MB for a set[bytes].
    assert compact <= 8 * 262_144 + 256 * 1024


# Run in a fresh interpreter: memory freed earlier in the test process would hide growth.
_GROWTH = """
from probe.store.urlset import URLSet

def anon():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("RssAnon:"))

with URLSet() as seen:
    for i in range(20_000):  # past the cache: pages now spill to the temporary file
        seen.add(f"https://n{i}.example/")
    before = anon()
    for i in range(20_000, 200_000):
        seen.add(f"https://n{i}.example/")
    grown = anon() - before
    assert len(seen) == 200_000
    assert "https://n7.example/" in seen and "https://n199999.example/" in seen
    assert not seen.add("https://n123456.example/")
print(grown)
"""


@pytest.mark.slow  # a memory budget
def test_memory_stops_growing_however_many_urls() -> None:
    """Beyond its page cache the set lives in a temporary file: memory is bounded, not O(URLs)."""
    done = subprocess.run([sys.executable, "-c", _GROWTH], capture_output=True, text=True,
                          check=True)
    grown = int(done.stdout)
    # 180,000 more URLs: 8-byte slots in memory grew by 3.5 MiB here (5.3 MiB at the peak,
    # while the table doubled), a Python set by ~16 MB.
    assert grown <= 1024, f"RssAnon grew by {grown} KiB"


def test_closing_forgets_and_a_new_set_starts_empty() -> None:
    with URLSet() as first:
        assert first.add("http://a.example/")
    with URLSet() as second:
        assert "http://a.example/" not in second
        assert second.add("http://a.example/") and len(second) == 1


def test_a_set_that_cannot_spill_to_a_temporary_file_is_kept_whole_in_memory() -> None:
    # No temporary file can be written (here: a file-size limit of 0; elsewhere a read-only or
    # missing temporary directory). Spilling would fail at ~16,000 URLs and lose the set; it is
    # kept in memory instead, every URL remembered. In a child: the limit is per process.
    code = (
        "import resource; resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))\n"
        "from probe.store.urlset import URLSet\n"
        "s = URLSet(); urls = [f'https://n{i}.example/' for i in range(60_000)]\n"
        "assert all(s.add(u) for u in urls) and not any(s.add(u) for u in urls[::7])\n"
        "assert all(u in s for u in urls[::13]) and 'https://other.example/' not in s\n"
        "assert s.in_memory and len(s) == 60_000\n"
    )
    # Output through pipes: the file-size limit would stop writes to a file.
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_a_set_spills_to_a_temporary_file_where_it_can() -> None:
    assert not URLSet().in_memory
