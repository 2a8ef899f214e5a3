"""Certificates for labs, benchmarks and tests (trustme): one toolkit, used everywhere.

:class:`CertAuthority` is a throw-away CA: it writes its certificate, issues leaves (also
expired ones) as PEM files or as TLS server contexts. :func:`make_certs` writes
the lab's set into its state directory:

* ``lab-ca.pem``: the lab CA (pass it to the probe and the helper with ``--cafile``);
* ``valid.pem``/``valid.key``: one leaf for every lab name;
* ``expired.pem``/``.key``: a leaf for the expired-certificate site, valid only in the past;
* ``wrong-name.pem``/``.key``: a leaf for ``other.lab.example``, served by the wrong-name site;
* ``censor-ca.pem`` and ``censor.pem``/``.key``: the interception CA and its leaf for every lab
  name, presented by the censor's TLS interceptor. Nothing trusts this CA;
* ``relay.pem``/``.key``: the lab's Tor-like relays' leaf (``relay.invalid``), from a CA of
  its own that nothing trusts either (a Tor relay's certificate is self-signed).
"""

from __future__ import annotations

import datetime as dt
import ssl
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import trustme

__all__ = ["CertAuthority", "make_certs"]


class CertAuthority:
    """A CA made on the spot (trustme); nothing trusts it unless given :meth:`write`'s file."""

    def __init__(self, organization: str = "probe lab CA") -> None:
        import trustme  # the `lab` and `test` extras

        self.ca = trustme.CA(organization_name=organization)

    def write(self, path: str | Path) -> str:
        """Write the CA certificate (PEM) to ``path``; returns the path."""
        self.ca.cert_pem.write_to_path(str(path))
        return str(path)

    def issue(self, *names: str, expired: bool = False) -> trustme.LeafCert:
        """A leaf for ``names``; ``expired``: valid only in the past (400 to 30 days ago)."""
        kwargs: dict[str, Any] = {}
        if expired:
            now = dt.datetime.now(dt.UTC)
            kwargs = {"not_before": now - dt.timedelta(days=400), "not_after": now - dt.timedelta(days=30)}
        return self.ca.issue_cert(*names, **kwargs)

    def leaf_files(self, directory: str | Path, stem: str, *names: str,
                   expired: bool = False) -> tuple[str, str]:  # fmt: skip
        """Write a leaf for ``names`` as ``STEM.pem`` (its chain) and ``STEM.key`` (mode 600)
        into ``directory``; returns (cert, key) paths."""
        leaf = self.issue(*names, expired=expired)
        cert, key = Path(directory) / f"{stem}.pem", Path(directory) / f"{stem}.key"
        cert.write_bytes(b"".join(pem.bytes() for pem in leaf.cert_chain_pems))
        key.write_bytes(leaf.private_key_pem.bytes())
        key.chmod(0o600)
        return str(cert), str(key)

    def server_context(self, *names: str, expired: bool = False,
                       alpn: Sequence[str] = ("http/1.1",)) -> ssl.SSLContext:  # fmt: skip
        """A TLS server context presenting a leaf for ``names``."""
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.issue(*names, expired=expired).configure_cert(ctx)
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        return ctx


def make_certs(directory: Path, names: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Write the lab's CAs and leaves into ``directory``; returns kind -> (cert, key) paths.

    The kinds are ``valid``, ``expired``, ``wrong-name``, ``censor`` and ``relay``; the CA files are
    ``directory/lab-ca.pem`` and ``directory/censor-ca.pem``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    chosen = sorted(set(names))
    lab = CertAuthority("probe lab CA")
    lab.write(directory / "lab-ca.pem")
    censor = CertAuthority("Censor interception CA")
    censor.write(directory / "censor-ca.pem")
    expired_name = next((n for n in chosen if n.startswith("expired.")), "expired.lab.example")
    return {
        "valid": lab.leaf_files(directory, "valid", *chosen),
        "expired": lab.leaf_files(directory, "expired", expired_name, expired=True),
        "wrong-name": lab.leaf_files(directory, "wrong-name", "other.lab.example"),
        "censor": censor.leaf_files(directory, "censor", *chosen),
        "relay": CertAuthority("untrusted relay CA").leaf_files(directory, "relay", "relay.invalid"),
    }
