#!/usr/bin/env python3
"""Write probe/data/observations-dict-<N>.json: the preset dictionary of the stored observations.

Usage::

    python tools/build_observations_dict.py [--check]

Run once, when a format is made. The file must then never change: every stored measurement of
that format is compressed against these exact bytes (their Adler-32 is in each zlib stream, and
probe/store/observations.py pins their SHA-256). A better dictionary is a new file and a new
format number, read beside the old ones.

Format 1 was made with the compact observations (schema version 11), from the record types as
they were before the QUIC and ECH tests; its file stays as committed (this script no longer
rebuilds it). Format 2 (written since) is made from the record types with the QUIC and ECH
fields: the records of steps taken only when asked first, then the failures and words, then a
two-hop skeleton without the empty fields of steps not taken, as the store writes it.

The dictionary is made from probe's record types, never from anybody's measurements: skeleton
records (field names in the order the codec writes them, the references the store puts in place
of bodies, chains and nothing else), the failure strings and a few protocol words common to
every network. zlib matches against the end of the dictionary most cheaply, so the skeleton of
what every measurement holds comes last.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import msgspec  # noqa: E402

from probe.core.codec import to_data  # noqa: E402
from probe.core.failures import Failure  # noqa: E402
from probe.core.model import (  # noqa: E402
    ControlECH,
    ControlObservation,
    ControlTCP,
    ControlTLS,
    DNSObservation,
    DNSReply,
    Hop,
    HTTPObservation,
    Measurement,
    Packet,
    QUICObservation,
    Target,
    TCPObservation,
    TLSHelloObservation,
    TLSObservation,
)
from probe.store.observations import drop_empty_steps  # noqa: E402

#: The format this script builds (probe/store/observations.py's FORMAT).
FORMAT = 2
DEST = ROOT / "probe" / "data" / f"observations-dict-{FORMAT}.json"

# Words of the protocols themselves: DNS rcodes and flags, TLS versions and the common
# ciphers, HTTP header names, resolver and helper URL prefixes.
WORDS = (
    "NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED", "MALFORMED", "QR", "AA", "TC", "RD", "RA",
    "TLSv1.2", "TLSv1.3", "TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
    "TLS_CHACHA20_POLY1305_SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "http/1.1", "h2",
    "content-type", "text/html; charset=utf-8", "content-length", "server", "date", "location",
    "cache-control", "set-cookie", "connection", "keep-alive", "close",
    "udp://", "tcp://", "doh:https://", "system", "https://", "http://", ":443", ":53",
)


def skeleton() -> dict[str, object]:
    """A measurement of two hops (http, then https) using every record of the steps every
    measurement takes, as the store writes it (probe/store/rows.py): the empty fields of steps
    not taken left out (probe/store/observations.py's drop_empty_steps)."""
    dns = DNSObservation(hostname="", qtype="A", resolver="", transport="udp", started=0.0,
                         duration=0.0, replies=(DNSReply(t=0.0, source="", rcode="NOERROR"),))
    tls = TLSObservation("", 443, "", 0.0, 0.0)
    http = HTTPObservation(url="", ip="", port=443, started=0.0, duration=0.0)
    control = ControlObservation(source="", url="", started=0.0, duration=0.0,
                                 tcp=(ControlTCP("", 443, True),),
                                 tls=(ControlTLS("", 443, "", True),))
    plain = Hop(index=0, url="", host="", port=80, scheme="http", dns=(dns,),
                tcp=(TCPObservation("", 80, 0.0, 0.0),), http=http, control=control)
    secure = Hop(index=1, url="", host="", port=443, scheme="https", dns=(dns,),
                 tcp=(TCPObservation("", 443, 0.0, 0.0),), tls=(tls,), http=http,
                 control=control, dns_control=(dns,))
    m = Measurement(target=Target("", "", "https", "", 443), started=0.0, runtime=0.0,
                    hops=(plain, secure))
    data: dict[str, object] = to_data(m)
    for hd in data["hops"]:  # type: ignore[attr-defined]
        hd["http"]["body_ref"] = ""
        del hd["http"]["body"]
        for td in hd["tls"]:
            td["cert_chain_sha256"] = []
            del td["cert_chain"]
    return drop_empty_steps(data)


def optional_records() -> dict[str, object]:
    """The records of steps a measurement takes only when asked (the QUIC and ECH tests, packet
    capture): at the start of the dictionary, where matches cost more than in the skeleton at
    its end, so that measurements without them (most) keep the skeleton close."""
    return {"quic": [to_data(QUICObservation("", 443, "", 0.0, 0.0, alpn="h3"))],
            "ech": [to_data(TLSHelloObservation("", 443, "", False, 0.0, 0.0,
                                                answer="server_hello"))],
            "control": {"quic": [to_data(ControlTLS("", 443, "", True))],
                        "ech": [to_data(ControlECH("", 443, "", True, True))]},
            "captured": True,
            "packets": [to_data(Packet(t=0.0, proto="tcp", src="", sport=443, dport=0, ttl=64,
                                       ip_id=0, df=True))]}


def build() -> bytes:
    """The dictionary's bytes."""
    return msgspec.json.encode([optional_records(), [str(f) for f in Failure], list(WORDS),
                                skeleton()])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true",
                    help="only say whether the file is what this script writes")
    args = ap.parse_args()
    data = build()
    if args.check:
        same = DEST.exists() and DEST.read_bytes() == data
        print(f"{DEST}: {'as built' if same else 'differs from what this script builds'}")
        return 0 if same else 1
    if DEST.exists():
        print(f"{DEST}: exists; format {FORMAT} is frozen (a new dictionary is a new format)",
              file=sys.stderr)
        return 1
    DEST.write_bytes(data)
    print(f"{DEST}: {len(data)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
