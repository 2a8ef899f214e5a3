"""The exports' per-operation tables, made from the stored observations (the record itself).

One row per DNS query, DNS reply, TCP connect, TLS handshake, HTTP exchange and control, each
named by its measurement's uid and hop. They are built from the packed observations
(:func:`probe.store.export.observed`), not from the store's flat tables, which keep only what
SQL queries ask about (docs/schema.md): so an export carries every field, timings, headers,
chains and the control's per-address results included, as proper columns: lists, and lists of
structs where a field is a list of records (``headers``, a control's ``tcp``/``tls``/``ip_info``).

Each column has a kind (its Arrow type in probe/research/export/parquet.py) and says whether
it is ever NULL: ``required`` columns are declared non-null, so ClickHouse loads them into
MergeTree tables without ``Nullable`` (the types follow probe/core/model.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from probe.store.rows import distinct_replies

__all__ = ["CERTIFICATES", "OBSERVED_TABLES", "OPTIONAL_TABLES", "STABILITY", "Column",
           "ObservedTable", "rows_of"]


@dataclass(frozen=True)
class Column:
    """One column: its name, kind and whether it always has a value."""

    name: str
    kind: str
    required: bool = False


def _cols(spec: str) -> tuple[Column, ...]:
    """Columns written as ``name:kind`` (``!`` after the kind: never NULL), space-separated."""
    out = []
    for item in spec.split():
        name, kind = item.split(":")
        out.append(Column(name, kind.rstrip("!"), kind.endswith("!")))
    return tuple(out)


@dataclass(frozen=True)
class ObservedTable:
    """A table made from the observations: its columns, and whether it is written by default."""

    name: str
    columns: tuple[Column, ...]
    default: bool = True


_KEY = "measurement_uid:str! hop:i32!"
_QUERY = _KEY + " control:bool! query:i32!"
OBSERVED_TABLES: tuple[ObservedTable, ...] = (
    ObservedTable("dns_queries", _cols(
        _QUERY + " resolver:str! transport:str! qtype:str! hostname:str! started:f64! "
        "duration:f64! failure:str addresses:strlist! n_replies:i32! n_distinct:i32!")),
    ObservedTable("dns_replies", _cols(
        _QUERY + " idx:i32! t:f64! source:str! rcode:str! answers:strlist! cnames:strlist! "
        "ttl:i64 flags:strlist! raw:bytes!"), default=False),
    ObservedTable("tcp_connects", _cols(
        _KEY + " ip:str! port:i32! started:f64! duration:f64! failure:str")),
    ObservedTable("tls_handshakes", _cols(
        _KEY + " ip:str! port:i32! sni:str! started:f64! duration:f64! failure:str version:str "
        "cipher:str alpn:str cert_valid:bool leaf_sha256:str leaf_subject:str leaf_issuer:str "
        "leaf_not_after:ts chain:strlist!")),
    ObservedTable("http_requests", _cols(
        _KEY + " url:str! ip:str! port:i32! started:f64! duration:f64! failure:str status:i32 "
        "headers:pairs! location:str body_length:i64 body_sha256:str body_truncated:bool! "
        "title:str")),
    ObservedTable("controls", _cols(
        _KEY + " source:str! url:str! started:f64! duration:f64! failure:str dns_failure:str "
        "dns_addrs:strlist! tcp:ctl_tcp! tls:ctl_tls! http_failure:str http_status:i32 "
        "http_body_length:i64 http_headers:pairs! http_title:str http_body_sha256:str "
        "ip_info:ip_info! http_ttfb:f64 http_transfer:f64 http_wire_bytes:i64 http_rtt:f64")),
)

#: Tables written only when asked for (``probe export --dns-replies``, ``--certificates``).
OPTIONAL_TABLES = frozenset(t.name for t in OBSERVED_TABLES if not t.default) | {"certificates"}

#: How stable each vantage point's latest verdict of each URL is (probe/store/history.py): of
#: its last ``runs`` runs that measured it (at most ``probe export --stability N``), ``agree`` had
#: the latest verdict; ``stability`` = agree / runs.
STABILITY = _cols("vantage:str! vantage_uid:str! url:str! verdict:str! stage:str runs:i32! "
                  "agree:i32! stability:f64!")

#: The certificates the exported handshakes received (every one of each chain, once per file).
CERTIFICATES = _cols("sha256:str! subject:str issuer:str not_before:ts not_after:ts der:bytes!")

Leaf = Callable[[str], tuple[str | None, str | None, str | None]]  # sha -> subject, issuer, not_after


def _pairs(items: Sequence[Sequence[str]] | None) -> list[dict[str, str]]:
    return [{"name": str(k), "value": str(v)} for k, v in items or ()]


def _queries(uid: str, h: int, control: bool, queries: Sequence[Mapping[str, Any]],
             out: dict[str, list[dict[str, Any]]]) -> None:
    for k, q in enumerate(queries):
        replies = q.get("replies") or ()
        out["dns_queries"].append({
            "measurement_uid": uid, "hop": h, "control": control, "query": k,
            "resolver": q["resolver"], "transport": q["transport"], "qtype": q["qtype"],
            "hostname": q["hostname"], "started": q["started"], "duration": q["duration"],
            "failure": q.get("failure"), "addresses": list(q.get("addresses") or ()),
            "n_replies": len(replies),
            "n_distinct": distinct_replies((r["rcode"], r.get("answers") or (), r.get("cnames") or ())
                                           for r in replies),
        })  # fmt: skip
        for i, r in enumerate(replies):
            out["dns_replies"].append({
                "measurement_uid": uid, "hop": h, "control": control, "query": k, "idx": i,
                "t": r["t"], "source": r["source"], "rcode": r["rcode"],
                "answers": list(r.get("answers") or ()), "cnames": list(r.get("cnames") or ()),
                "ttl": r.get("ttl"), "flags": list(r.get("flags") or ()), "raw": r.get("raw") or "",
            })  # fmt: skip


def rows_of(uid: str, data: Mapping[str, Any], leaf: Leaf, chains: set[str]
            ) -> Iterator[tuple[str, dict[str, Any]]]:
    """(table, row) for every operation of one measurement's observations (``data``, as
    stored: bodies and chains by reference). ``leaf(sha)`` names a leaf certificate; the
    digests of every chain are added to ``chains``. DNS replies' ``raw`` stays base64 text here
    (the writer decodes it)."""
    out: dict[str, list[dict[str, Any]]] = {t.name: [] for t in OBSERVED_TABLES}
    for hop in data.get("hops") or ():
        h = int(hop["index"])
        _queries(uid, h, False, hop.get("dns") or (), out)
        _queries(uid, h, True, hop.get("dns_control") or (), out)
        for c in hop.get("tcp") or ():
            out["tcp_connects"].append({"measurement_uid": uid, "hop": h, **{
                k: c.get(k) for k in ("ip", "port", "started", "duration", "failure")}})
        for t in hop.get("tls") or ():
            chain = list(t.get("cert_chain_sha256") or ())
            chains.update(chain)
            subject, issuer, not_after = leaf(chain[0]) if chain else (None, None, None)
            out["tls_handshakes"].append({
                "measurement_uid": uid, "hop": h,
                **{k: t.get(k) for k in ("ip", "port", "sni", "started", "duration", "failure",
                                         "version", "cipher", "alpn", "cert_valid")},
                "leaf_sha256": chain[0] if chain else None, "leaf_subject": subject,
                "leaf_issuer": issuer, "leaf_not_after": not_after, "chain": chain,
            })  # fmt: skip
        http = hop.get("http")
        if http is not None:
            out["http_requests"].append({
                "measurement_uid": uid, "hop": h,
                **{k: http.get(k) for k in ("url", "ip", "port", "started", "duration", "failure",
                                            "status", "location", "body_length", "body_sha256",
                                            "title")},
                "headers": _pairs(http.get("headers")),
                "body_truncated": bool(http.get("body_truncated")),
            })  # fmt: skip
        ctl = hop.get("control")
        if ctl is not None:
            out["controls"].append({
                "measurement_uid": uid, "hop": h,
                **{k: ctl.get(k) for k in ("source", "url", "started", "duration", "failure",
                                           "dns_failure", "http_failure", "http_status",
                                           "http_body_length", "http_title", "http_body_sha256",
                                           "http_ttfb", "http_transfer", "http_wire_bytes",
                                           "http_rtt")},
                "dns_addrs": list(ctl.get("dns_addrs") or ()),
                "tcp": list(ctl.get("tcp") or ()), "tls": list(ctl.get("tls") or ()),
                "http_headers": _pairs(ctl.get("http_headers")),
                "ip_info": [{"ip": i[0], "asn": i[1], "flags": i[2]} for i in ctl.get("ip_info") or ()],
            })  # fmt: skip
    for table, rows in out.items():
        for row in rows:
            yield table, row
