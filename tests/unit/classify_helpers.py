"""Shared imports for the classifier unit tests: the golden-case builders and a judge helper."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "golden"))

from builders import control, dns, hop, http, measurement, page, tcp, tls  # noqa: E402

from probe.core.model import Measurement, Verdict  # noqa: E402
from probe.inputs.geo import GeoDB  # noqa: E402
from probe.judge.classify import classify  # noqa: E402

GEO_FIXTURE = HERE.parent / "fixtures" / "geo" / "ip2asn-fixture.tsv"
SITE, SITE2, CENSOR, CDN = "192.0.2.10", "192.0.2.11", "203.0.113.66", "198.51.100.7"
HOST = "news.example.com"
URL, SURL = f"http://{HOST}/", f"https://{HOST}/"
PAGE = page("Example News - Front page", 20000)

__all__ = [
    "CDN", "CENSOR", "GEO_FIXTURE", "HOST", "PAGE", "SITE", "SITE2", "SURL", "URL",
    "control", "ctl", "dns", "has", "hop", "http", "judge", "measurement", "page", "plain",
    "sctl", "secure",
    "tcp", "tls",
]  # fmt: skip

_GEO: GeoDB | None = None


def judge(m: Measurement, *, geo: bool = False) -> Verdict:
    global _GEO
    if geo and _GEO is None:
        _GEO = GeoDB.open(GEO_FIXTURE)
    return classify(m, geo=_GEO if geo else None)


def has(v: Verdict, sub: str) -> bool:
    return any(sub in r for r in v.reasons)


def plain(addrs=(SITE,), ctl=None, *, dns_=None, tcp_=None, http_="default", host=HOST):
    url = f"http://{host}/"
    ip = addrs[0] if addrs else SITE
    return hop(
        url,
        dns_=dns_ if dns_ is not None else [dns(host, addrs)],
        tcp_=tcp_ if tcp_ is not None else [tcp(a) for a in addrs],
        http_=http(url, ip, body=PAGE) if http_ == "default" else http_,
        control=ctl,
    )


def secure(addrs=(SITE,), ctl=None, *, tls_=None, http_="default", body=PAGE):
    return hop(
        SURL,
        dns_=[dns(HOST, addrs)],
        tcp_=[tcp(a, 443) for a in addrs],
        tls_=tls_ if tls_ is not None else [tls(a, HOST) for a in addrs],
        http_=http(SURL, addrs[0], body=body) if http_ == "default" else http_,
        control=ctl,
    )


def ctl(addrs=(SITE,), body=PAGE, port=80, url=URL, tls_fail="none", **kw):
    """A helper observation that connected everywhere and fetched ``body``."""
    tls_ = [(a, 443, None if tls_fail == "none" else tls_fail) for a in addrs] if port == 443 else []
    kw.setdefault("tcp_", [(a, port, None) for a in addrs])
    return control(url, addrs, tls_=tls_, body=body, **kw)


def sctl(addrs=(SITE,), body=PAGE, **kw):
    return ctl(addrs, body, port=443, url=SURL, **kw)
