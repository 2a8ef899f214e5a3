"""How the classifier turns findings into one verdict: order, evidence kept, purity, versions."""

from __future__ import annotations

import json

from classify_helpers import (
    CENSOR,
    HOST,
    SITE,
    URL,
    ctl,
    dns,
    has,
    hop,
    http,
    judge,
    measurement,
    page,
    plain,
    tcp,
)

from probe.core.codec import from_data, to_data
from probe.core.model import VERDICTS, Measurement
from probe.judge.classify import CLASSIFIER_VERSION, classify, findings, needs_retry


def test_first_stage_decides_and_later_evidence_stays_in_the_reasons() -> None:
    # DNS answers a censor's address, and the page it serves is a diff: dns decides.
    v = judge(
        measurement(plain((CENSOR,), ctl(), http_=http(URL, CENSOR, body=page("Access restricted", 700))))
    )
    assert (v.verdict, v.stage) == ("hijacked", "dns")
    assert has(v, "http/diff")


def test_first_hop_decides_over_later_hops() -> None:
    first = plain(
        ctl=ctl(), tcp_=[tcp(SITE)], http_=http(URL, SITE, status=302, location="http://www.warning.or.kr")
    )
    second = hop(
        "http://www.warning.or.kr/", index=1, dns_=[dns("www.warning.or.kr", failure="dns_nxdomain_error")]
    )
    second = second.__class__(**{**second.__dict__, "control": ctl(url="http://www.warning.or.kr/")})
    v = judge(measurement(first, second))
    assert v.hop == 0 and v.stage == "http"
    assert has(v, "dns/nxdomain")


def test_interference_beats_down_and_down_beats_inconclusive() -> None:
    c = ctl(body=None, http_failure="connection_refused", tcp_=[(SITE, 80, "connection_refused")])
    down = plain(ctl=c, tcp_=[tcp(SITE, 80, "connection_refused")], http_=None)
    assert judge(measurement(down)).verdict == "down"
    with_injection = down.__class__(
        **{**down.__dict__, "dns": (dns(HOST, replies=[("NOERROR", [SITE]), ("NOERROR", [CENSOR])]),)}
    )
    assert judge(measurement(with_injection)).verdict == "hijacked"


def test_same_input_same_verdict() -> None:
    m = measurement(plain(ctl=ctl()))
    assert classify(m) == classify(m)


def test_verdict_is_reproducible_from_stored_json() -> None:
    m = measurement(plain((CENSOR,), ctl(), http_=http(URL, CENSOR, body=page("Access restricted", 700))))
    stored = json.loads(json.dumps(to_data(m)))
    again = from_data(Measurement, stored)
    assert classify(again) == classify(m)


def test_verdicts_use_the_fixed_vocabulary_and_carry_the_version() -> None:
    ms = [
        measurement(plain(ctl=ctl())),
        measurement(plain()),
        measurement(plain(ctl=ctl(), tcp_=[tcp(SITE, 80, "generic_timeout_error")], http_=None)),
    ]
    for m in ms:
        v = classify(m)
        assert v.verdict in VERDICTS
        assert v.classifier_version == CLASSIFIER_VERSION


def test_measurement_that_could_not_run_is_inconclusive() -> None:
    v = classify(
        Measurement(
            target=measurement(plain()).target, started=0.0, runtime=60.0, failure="deadline_exceeded"
        )
    )
    assert v.verdict == "inconclusive" and has(v, "measurement/deadline_exceeded")


def test_reasons_follow_the_stage_outcome_detail_format() -> None:
    v = judge(
        measurement(plain((CENSOR,), ctl(), http_=http(URL, CENSOR, body=page("Access restricted", 700))))
    )
    for r in v.reasons:
        stage, _, rest = r.partition("/")
        assert stage in ("dns", "tcp", "tls", "http", "control", "measurement") and rest


def test_findings_lists_evidence_in_hop_and_stage_order() -> None:
    fs = findings(measurement(plain((CENSOR,), ctl(), http_=http(URL, CENSOR, body=page("X", 70)))))
    stages = [f.stage for f in fs if f.stage in ("dns", "tcp", "tls", "http")]
    order = {"dns": 0, "tcp": 1, "tls": 2, "http": 3}
    assert stages == sorted(stages, key=order.__getitem__)


def test_content_evidence_is_not_retried() -> None:
    inj = measurement(
        plain(
            dns_=[dns(HOST, replies=[("NOERROR", [CENSOR]), ("NOERROR", [SITE])])],
            ctl=ctl(),
            tcp_=[tcp(CENSOR, 80, "generic_timeout_error")],
            http_=None,
        )
    )
    assert not needs_retry(inj)
    ok = measurement(plain(ctl=ctl()))
    assert not needs_retry(ok)


def test_odd_and_partial_observations_never_raise() -> None:
    import random

    from probe.core.model import HTTPObservation

    rng = random.Random(7)
    failures = [
        None,
        "generic_timeout_error",
        "connection_reset",
        "connection_refused",
        "eof_error",
        "ssl_unknown_authority",
        "dns_nxdomain_error",
        "unknown_failure: boom",
        "deadline_exceeded",
    ]
    addrs = ["192.0.2.10", "10.0.0.1", "::1", "not-an-ip", "0.0.0.0", "2001:db8::1", ""]
    seen = set()
    for _ in range(300):
        ip = rng.choice(addrs)
        h = plain(
            (ip,),
            rng.choice([None, ctl(), ctl(body=None, http_failure=rng.choice(failures[1:]))]),
            dns_=[dns(HOST, [ip], failure=rng.choice(failures))],
            tcp_=[tcp(ip, 80, rng.choice(failures))],
            http_=rng.choice(
                [
                    None,
                    http(URL, ip, failure=rng.choice(failures[1:])),
                    HTTPObservation(URL, ip, 80, 0.0, 0.0),
                    http(URL, ip, body=page("T", 50)),
                ]
            ),
        )
        v = classify(measurement(h))
        assert v.verdict in VERDICTS
        seen.add(v.verdict)
    assert len(seen) >= 4
