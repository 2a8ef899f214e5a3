"""The lab's certificates, made with trustme: a lab CA the probe trusts, and a censor CA it does not.

Files written into the lab's state directory:

* ``lab-ca.pem``: the lab CA (pass it to the probe and the helper with ``--cafile``);
* ``valid.pem``/``valid.key``: one leaf for every lab name;
* ``expired.pem``/``.key``: a leaf for the expired-certificate site, valid only in the past;
* ``wrong-name.pem``/``.key``: a leaf for ``other.lab.example``, served by the wrong-name site;
* ``censor-ca.pem`` and ``censor.pem``/``.key``: the interception CA and its leaf for every lab
  name, presented by the censor's TLS interceptor. Nothing trusts this CA.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import trustme

__all__ = ["make_certs"]


def _write_leaf(leaf: trustme.LeafCert, directory: Path, stem: str) -> tuple[str, str]:
    cert, key = directory / f"{stem}.pem", directory / f"{stem}.key"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    key.write_bytes(leaf.private_key_pem.bytes())
    key.chmod(0o600)
    return str(cert), str(key)


def make_certs(directory: Path, names: Iterable[str]) -> dict[str, tuple[str, str]]:
    """Write the lab's CAs and leaves into ``directory``; returns kind -> (cert, key) paths.

    The kinds are ``valid``, ``expired``, ``wrong-name`` and ``censor``; the CA files are
    ``directory/lab-ca.pem`` and ``directory/censor-ca.pem``.
    """
    import trustme

    directory.mkdir(parents=True, exist_ok=True)
    names = sorted(set(names))
    lab = trustme.CA(organization_name="probe lab CA")
    lab.cert_pem.write_to_path(str(directory / "lab-ca.pem"))
    censor = trustme.CA(organization_name="Censor interception CA")
    censor.cert_pem.write_to_path(str(directory / "censor-ca.pem"))
    now = dt.datetime.now(dt.UTC)
    expired_name = next((n for n in names if n.startswith("expired.")), "expired.lab.example")
    return {
        "valid": _write_leaf(lab.issue_cert(*names), directory, "valid"),
        "expired": _write_leaf(
            lab.issue_cert(
                expired_name,
                not_before=now - dt.timedelta(days=400),
                not_after=now - dt.timedelta(days=30),
            ),
            directory,
            "expired",
        ),
        "wrong-name": _write_leaf(lab.issue_cert("other.lab.example"), directory, "wrong-name"),
        "censor": _write_leaf(censor.issue_cert(*names), directory, "censor"),
    }
