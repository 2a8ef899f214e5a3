"""``probe testlists update --endpoints-url``: fetch the messaging endpoint list, check it, then
install it, as the Citizen Lab lists are (probe/inputs/testlists/update.py).

The source is a mirror by URL serving ``messaging.csv`` (the format of
probe/inputs/endpointlists.py) and the CA files its rows name in their ``ca`` column, next to it
(``signal-ca.pem``). There is no default source: the packaged list is measured until an update
installs another (``--endpoints-url``, ``$PROBE_ENDPOINTS_URL`` or ``endpoints_url`` in the
config file). Nothing is installed until everything has been fetched and checked: the list must
parse (``file:line`` on the first bad row), hold only messaging kinds and every app, and not
lose more than half of its endpoints (unless ``force``); a CA file must be PEM certificates.
Files are staged next to the destination and each installed with one atomic rename, the CA
files first, so the installed list never names a CA file that is not there.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from probe.host.files import download_bounded
from probe.inputs.endpointlists import (
    MESSAGING_APPS,
    MESSAGING_LIST,
    EndpointListError,
    endpoints_dir,
    load_endpoints,
    messaging_list,
)
from probe.inputs.testlists.update import (
    MIN_KEPT_SHARE,
    UpdateError,
    install_staged,
    new_stage,
)

__all__ = ["ENDPOINTS_ENV", "ORIGIN_NAME", "EndpointUpdate", "endpoints_source", "update_endpoints"]

#: Environment variable naming the mirror of the endpoint lists.
ENDPOINTS_ENV = "PROBE_ENDPOINTS_URL"
#: Written next to the installed list: where and when it was fetched, and each file's SHA-256.
ORIGIN_NAME = "endpoints-origin.json"
MAX_LIST_BYTES = 4 << 20  # an endpoint list is a few KB
MAX_CA_BYTES = 256 << 10  # a CA file is a few KB
MAX_CA_FILES = 8


@dataclass(frozen=True)
class EndpointUpdate:
    """What an update installed: where, from where, and how the list changed."""

    target: Path
    source: str
    files: tuple[str, ...]
    before: int | None  # endpoints of the list measured until now (None: none was readable)
    after: int
    added: int
    removed: int


def endpoints_source(url: str | None = None) -> str | None:
    """The mirror of an update: ``url``, else ``$PROBE_ENDPOINTS_URL``, else None (no update)."""
    chosen = url or os.environ.get(ENDPOINTS_ENV)
    if not chosen:
        return None
    if not chosen.startswith(("http://", "https://")):
        raise UpdateError(f"{chosen}: the endpoints source must be an http:// or https:// URL")
    return chosen if chosen.endswith("/") else chosen + "/"


def _ca_names(text: str, url: str) -> list[str]:
    """The CA files the list's rows name (checked as file names by the list's parser later)."""
    names = {(row.get("ca") or "").strip() for row in csv.DictReader(io.StringIO(text))} - {""}
    if len(names) > MAX_CA_FILES:
        raise UpdateError(f"{url}: names {len(names)} CA files (at most {MAX_CA_FILES})")
    bad = sorted(n for n in names if "/" in n or "\\" in n or n.startswith(".") or not n.endswith(".pem"))
    if bad:
        raise UpdateError(f"{url}: ca {bad[0]!r} must be a .pem file name next to the list")
    return sorted(names)


def _check_ca(path: Path, url: str) -> None:
    """UpdateError unless ``path`` holds PEM certificates of certificate authorities (read by
    content: the staging path's name repeats between updates, and CA checks are cached by path)."""
    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(path.read_bytes())
    except ValueError:
        raise UpdateError(f"{url}: not a PEM certificate file") from None
    for cert in certs:
        try:
            is_ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            is_ca = False
        if not is_ca:
            raise UpdateError(f"{url}: {cert.subject.rfc4514_string()} is not a certificate authority")


def _keys(path: Path) -> set[tuple[str, str, int]] | None:
    try:
        return {(e.kind, e.address, e.port) for e in load_endpoints([path])}
    except EndpointListError:
        return None


def update_endpoints(
    source: str, dest: Path | None = None, *, timeout: float = 60.0, force: bool = False
) -> EndpointUpdate:
    """Fetch ``messaging.csv`` and its CA files from ``source``, check them, and install them in
    ``dest`` (default: :func:`~probe.inputs.endpointlists.endpoints_dir`). Raises
    :class:`UpdateError` with the installed files untouched when anything is missing or
    invalid, or (unless ``force``) when the list would lose more than half of its endpoints."""
    from probe.host.httpstack import load

    load()  # before httpx is first imported (probe/host/httpstack.py)
    import httpx

    base = endpoints_source(source)
    assert base is not None
    target = dest if dest is not None else endpoints_dir()
    name = MESSAGING_LIST.name
    before_path = target / name if (target / name).is_file() else messaging_list()
    stage = new_stage(target)
    try:
        url = f"{base}{name}"
        with httpx.Client(timeout=timeout, follow_redirects=True, max_redirects=5,
                          trust_env=False) as client:  # fmt: skip
            download_bounded(client, url, stage / name, MAX_LIST_BYTES, what="an endpoint list",
                             error=UpdateError, total=timeout)  # fmt: skip
            try:
                text = (stage / name).read_bytes().decode("utf-8-sig")
            except UnicodeDecodeError as exc:
                raise UpdateError(f"{url}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
            cas = _ca_names(text, url)
            for ca in cas:
                download_bounded(client, f"{base}{ca}", stage / ca, MAX_CA_BYTES, what="a CA file",
                                 error=UpdateError, total=timeout)  # fmt: skip
                _check_ca(stage / ca, f"{base}{ca}")
        try:
            endpoints = load_endpoints([stage / name])
        except EndpointListError as exc:
            raise UpdateError(f"{url}: {exc}") from None
        others = sorted({e.kind for e in endpoints} - set(MESSAGING_APPS))
        if others:
            kinds = ", ".join(MESSAGING_APPS)
            raise UpdateError(f"{url}: kind {others[0]!r} is not a messaging kind ({kinds})")
        missing = sorted(set(MESSAGING_APPS.values()) - {MESSAGING_APPS[e.kind] for e in endpoints})
        if missing:
            raise UpdateError(f"{url}: no endpoint of {', '.join(missing)}: not installed")
        new = {(e.kind, e.address, e.port) for e in endpoints}
        old = _keys(before_path)
        if not force and old and len(new) < MIN_KEPT_SHARE * len(old):
            raise UpdateError(f"{url}: {len(new)} endpoints where {len(old)} are measured now: a list that "
                              "loses more than half of its endpoints is not installed without --force "
                              "(a broken or hostile mirror?)")  # fmt: skip
        files = (name, *cas)
        fetched = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        digests = {f: hashlib.sha256((stage / f).read_bytes()).hexdigest() for f in files}
        origin = {"source": base, "fetched": fetched, "files": digests}
        (stage / ORIGIN_NAME).write_text(json.dumps(origin, indent=1, sort_keys=True), encoding="utf-8")
        install_staged(stage, target)
        had = old or set()
        return EndpointUpdate(target, base, files, None if old is None else len(old), len(new),
                              len(new - had), len(had - new))  # fmt: skip
    except OSError as exc:
        raise UpdateError(f"{exc.filename or target}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
