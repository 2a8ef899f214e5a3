"""OONI Web Connectivity measurements -> probe's records, so probe's classifier can re-judge them.

OONI publishes every measurement (https://ooni.org/data, CC-BY 4.0). A Web Connectivity
measurement (ooni/spec ``nettests/ts-017-web-connectivity.md``, data formats ``df-*``) carries the
probe's DNS queries, TCP connects, TLS handshakes (engine 0.4+), the HTTP redirect chain
(``requests``, newest first) and the test helper's answer (``control``), which has the shape of
probe's own helper response. This module maps one such measurement into a :class:`Measurement`
(hop 0 carries the control, as OONI's helper describes only the first URL), keeping OONI's own
verdict (``blocking``, ``accessible``) and the metadata that identifies it.

Three engine generations are read:

* Measurement Kit (``libmeasurement_kit``, data format 0.2): no TLS handshakes, no request
  addresses, DNS answers without ASNs;
* ooniprobe-engine Web Connectivity 0.4: ``tls_handshakes``, still no request addresses;
* Web Connectivity 0.5 (LTE): per-request ``address``/``transaction_id``, control with
  ``tls_handshake`` and ``ip_info``.

What the format lacks is inferred conservatively and named in :attr:`OONIRecord.inferred`:

* ``http-ip``: the address of an HTTP exchange without one (before 0.5) is the first address of
  that host whose TCP connect succeeded on the request's port; with none, the exchange keeps
  no address (so it authenticates nothing);
* ``dns-replies``: one reply per query, rebuilt from its answers (OONI keeps no raw replies,
  so injection cannot be seen);
* ``tls-cert-valid``: a handshake without failure validated the certificate (OONI's engine
  verifies the chain and the name, and reports ``ssl_*`` failures otherwise);
* ``hop-of-tcp``: connects are given to the hop whose host resolved to that address.

Nothing here does I/O except :func:`iter_lines`, which streams files (plain, ``.gz``, or the
files of a directory) one line at a time.

The package: :mod:`probe.research.ooni.record` (the mapped record and OONI's verdict in probe's words),
:mod:`probe.research.ooni.files` (streaming the files), :mod:`probe.research.ooni.fields` (OONI's values, read
defensively) and :mod:`probe.research.ooni.measurement` (one measurement -> probe's records).
"""

from __future__ import annotations

from probe.research.ooni.files import iter_lines
from probe.research.ooni.measurement import parse_measurement
from probe.research.ooni.record import OONIFormatError, OONIRecord, ooni_verdict

__all__ = [
    "OONIFormatError",
    "OONIRecord",
    "iter_lines",
    "ooni_verdict",
    "parse_measurement",
]
