"""Throttling: the run-level rule (pure), samples from stored JSON, judge_run and reclassify."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from probe.core.codec import to_data
from probe.core.model import (
    ControlObservation,
    Hop,
    HTTPObservation,
    Measurement,
    Target,
    TCPObservation,
    Verdict,
)
from probe.judge import throttling
from probe.judge.throttling import (
    MIN_BYTES,
    RTT_FLOOR,
    Sample,
    judge_samples,
    sample_from_json,
    unthrottled,
)
from probe.run import throttling as run_throttling
from probe.run.reclassify import reclassify
from probe.run.throttling import judge_run
from probe.store import Store

OK = Verdict("ok", None, None, ("http/match",), "test")


def _s(mid: int, per_rtt: float | None, control: float | None = 50_000.0, verdict: Verdict = OK) -> Sample:
    return Sample(mid, f"https://s{mid}.example/", verdict, per_rtt, control, hop=0)


REFS = [_s(i, 40_000.0 + 1000 * i) for i in range(1, 5)]


def test_a_site_far_slower_than_the_others_while_the_control_is_fast_is_throttled() -> None:
    out = judge_samples([*REFS, _s(9, 300.0)])
    v = out[9]
    assert (v.verdict, v.stage, v.hop) == ("throttled", "http", 0)
    assert v.reasons[0] == "http/throttled:142x" and v.reasons[1].startswith("control/http-speed:1.0x")
    assert "http/match" in v.reasons
    assert all(out[r.measurement_id] == OK for r in REFS)


def test_slow_for_the_control_too_is_a_slow_site_not_throttling() -> None:
    v = judge_samples([*REFS, _s(9, 300.0, control=500.0)])[9]
    assert v.verdict == "ok" and "http/slow:142x" in v.reasons and "control/http-speed:100x" in v.reasons


def test_without_the_controls_speed_slowness_is_evidence_only() -> None:
    v = judge_samples([*REFS, _s(9, 300.0, control=None)])[9]
    assert v.verdict == "ok" and v.reasons == ("http/match", "http/slow:142x")


def test_a_slow_network_for_everyone_throttles_nothing() -> None:
    slow = [_s(i, 400.0 + 10 * i) for i in range(1, 8)]
    assert all(v == OK for v in judge_samples(slow).values())


def test_too_few_references_or_small_bodies_decide_nothing() -> None:
    assert judge_samples([*REFS[:2], _s(9, 300.0)])[9] == OK
    assert judge_samples([*REFS, _s(9, None)])[9] == OK


def test_only_ok_pages_are_judged_and_a_throttled_page_that_recovered_is_ok_again() -> None:
    blocked = Verdict("blocked", "http", 0, ("http/blockpage:x",), "test")
    assert judge_samples([*REFS, _s(9, 300.0, verdict=blocked)])[9] == blocked
    was = judge_samples([*REFS, _s(9, 300.0)])[9]
    assert unthrottled(was) == OK
    assert judge_samples([*REFS, _s(9, 45_000.0, verdict=was)])[9] == OK


def _measurement(n: int, *, nbytes: int, transfer: float, rtt: float = 0.05, status: int = 200,
                 control: tuple[int, float, float] | None = None) -> Measurement:  # fmt: skip
    host = f"s{n}.example"
    url = f"https://{host}/big"
    target = Target(url=url, original_url=url, scheme="https", host=host, port=443, path="/big")
    http = HTTPObservation(url=url, ip="192.0.2.1", port=443, started=1.0, duration=0.1 + transfer,
                           status=status, body_length=nbytes, ttfb=0.1, wire_bytes=nbytes)  # fmt: skip
    ctl = None
    if control is not None:
        ctl = ControlObservation(source="http://127.0.0.1:1/", url=url, started=1.0, duration=1.0,
                                 http_status=200, http_ttfb=0.05, http_transfer=control[1],
                                 http_wire_bytes=control[0], http_rtt=control[2])  # fmt: skip
    hop = Hop(index=0, url=url, host=host, port=443, scheme="https",
              tcp=(TCPObservation("192.0.2.1", 443, 1.0, rtt),), http=http, control=ctl)  # fmt: skip
    return Measurement(target=target, started=1.0, runtime=1.0, attempt=0, hops=(hop,))


def test_samples_measure_bytes_per_round_trip_from_stored_json() -> None:
    m = _measurement(1, nbytes=256 << 10, transfer=0.5, control=(256 << 10, 0.25, 0.02))
    data = to_data(m)
    ctl = {0: to_data(m.hops[0].control)}
    s = sample_from_json(7, m.target.url, OK, data, ctl)
    assert s.per_rtt == pytest.approx((256 << 10) * 0.05 / 0.5)
    assert s.control_per_rtt == pytest.approx((256 << 10) * 0.02 / 0.25)
    small = _measurement(2, nbytes=MIN_BYTES - 1, transfer=0.5)
    assert sample_from_json(8, small.target.url, OK, to_data(small), {}).per_rtt is None
    notfound = _measurement(3, nbytes=256 << 10, transfer=0.5, status=404)
    assert sample_from_json(9, notfound.target.url, OK, to_data(notfound), {}).per_rtt is None


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "p.db"
    fast = (256 << 10, 0.01, 0.02)
    with Store.open(path) as s:
        vid = s.vantage("home")
        run = s.start_run(vid, [], {})
        rows = [(_measurement(i, nbytes=256 << 10, transfer=0.02, control=fast), OK) for i in range(5)]
        rows.append((_measurement(9, nbytes=256 << 10, transfer=4.0, control=fast), OK))
        s.write(run, vid, rows)
        s.finish_run(run, "complete")
    return path


def test_judge_run_rewrites_the_verdict_and_the_runs_counts(db: Path) -> None:
    with Store.open(db) as s:
        (change,) = judge_run(s, 1)
        assert change.url == "https://s9.example/big" and change.new.verdict == "throttled"
        assert s.run_summary(1)["throttled"] == 1 and s.run_summary(1)["ok"] == 5
        assert judge_run(s, 1) == []  # idempotent


def test_reclassify_keeps_a_throttled_verdict_and_reports_no_change(db: Path) -> None:
    def classify(m: Measurement) -> Verdict:
        return OK

    with Store.open(db) as s:
        judge_run(s, 1)
        report = reclassify(s, classify=classify, version="test")
        assert report.changed == 0
        assert s.run_summary(1)["throttled"] == 1


def test_the_kernels_round_trip_is_preferred_to_the_connect_time() -> None:
    m = _measurement(1, nbytes=256 << 10, transfer=0.5, rtt=0.4)
    data = to_data(m)
    data["hops"][0]["http"]["path_rtt"] = 0.05
    assert sample_from_json(7, m.target.url, OK, data, {}).per_rtt == pytest.approx((256 << 10) * 0.05 / 0.5)


def _mixed_run(path: Path, *, throttled: bool) -> None:
    """Large fast pages, small pages (most of whose controls fetched a large body), a truncated
    body, a 404, and (``throttled``) one large page far slower than the rest."""
    fast = (256 << 10, 0.01, 0.02)
    with Store.open(path) as s:
        vid = s.vantage("home")
        run = s.start_run(vid, [], {})
        rows = [(_measurement(i, nbytes=256 << 10, transfer=0.02, control=fast), OK) for i in range(5)]
        # Small pages whose controls fetched a large body: the control's references include them.
        big = (8 << 20, 0.5, 0.02)
        rows += [(_measurement(10 + i, nbytes=4 << 10, transfer=0.001, control=big), OK) for i in range(20)]
        rows.append((_measurement(40, nbytes=1 << 10, transfer=0.001), OK))
        rows.append((_measurement(41, nbytes=256 << 10, transfer=0.02, status=404, control=fast), OK))
        truncated = _measurement(42, nbytes=MIN_BYTES // 2, transfer=0.02, control=fast)
        http = replace(truncated.hops[0].http, body_truncated=True, wire_bytes=MIN_BYTES * 2)
        rows.append((replace(truncated, hops=(replace(truncated.hops[0], http=http),)), OK))
        if throttled:
            rows.append((_measurement(9, nbytes=256 << 10, transfer=4.0, control=fast), OK))
        s.write(run, vid, rows)
        s.finish_run(run, "complete")


def _decoding_everything(s: Store) -> dict[int, Verdict]:
    samples = list(run_throttling._samples(s, 1, candidates_only=False))
    return {m: v for m, v in judge_samples(samples).items()
            if v != next(x.verdict for x in samples if x.measurement_id == m)}  # fmt: skip


@pytest.mark.parametrize("throttled", [False, True])
def test_the_sql_prefilter_changes_the_same_verdicts_as_decoding_every_page(
    tmp_path: Path, throttled: bool
) -> None:
    _mixed_run(tmp_path / "p.db", throttled=throttled)
    with Store.open(tmp_path / "p.db") as s:
        expected = _decoding_everything(s)
        changes = judge_run(s, 1)
        assert {ch.measurement_id: ch.new for ch in changes} == expected
        assert [ch.new.verdict for ch in changes] == (["throttled"] if throttled else [])
        # A second pass (reclassify) finds the throttled page by its verdict and keeps it.
        assert judge_run(s, 1) == [] and _decoding_everything(s) == {}


def test_the_prefilter_selects_large_or_truncated_fetches_and_earlier_judgements(tmp_path: Path) -> None:
    _mixed_run(tmp_path / "p.db", throttled=False)
    with Store.open(tmp_path / "p.db") as s:
        hosts = {x.url.split("/")[2] for x in run_throttling._samples(s, 1, candidates_only=True)}
        assert hosts == {"s0.example", "s1.example", "s2.example", "s3.example", "s4.example",
                         "s42.example"}  # fmt: skip
        slow = Verdict("ok", None, None, ("http/match", "http/slow:20x"), "test")
        (mid,) = s.conn.execute("SELECT id FROM measurements WHERE url = 'https://s11.example/big'").fetchone()
        s.set_verdicts([(mid, slow)])
        hosts = {x.url.split("/")[2] for x in run_throttling._samples(s, 1, candidates_only=True)}
        assert "s11.example" in hosts  # its evidence must be re-judged (and dropped)
        assert {ch.measurement_id: ch.new.reasons for ch in judge_run(s, 1)} == {mid: ("http/match",)}


def test_a_body_far_smaller_decoded_than_on_the_wire_gives_no_sample() -> None:
    m = _measurement(1, nbytes=256 << 10, transfer=0.5)
    http = replace(m.hops[0].http, body_length=100)  # kilobytes of gzip header fields, say
    odd = replace(m, hops=(replace(m.hops[0], http=http),))
    assert sample_from_json(7, m.target.url, OK, to_data(odd), {}).per_rtt is None


def test_the_median_of_the_others_is_statistics_median_without_the_sample() -> None:
    import random
    import statistics

    rnd = random.Random(7)
    for n in range(0, 12):
        values = [(i, float(rnd.choice([1, 2, 2, 3, 5, 8, 13]) * rnd.random())) for i in range(n)]
        values += [(100 + i, 4.0) for i in range(rnd.randint(0, 3))]  # ties
        medians = throttling._Medians(values)
        for own in [mid for mid, _ in values] + [999]:  # 999: not among them
            others = [x for mid, x in values if mid != own]
            want = statistics.median(others) if len(others) >= throttling.MIN_REFERENCES else None
            assert medians.without(own) == want


def test_sub_millisecond_round_trips_do_not_turn_queueing_noise_into_throttling() -> None:
    # One slow network for everyone: every page moved at about the same rate, but the kernel's
    # minimum round trip of each connection (behind the shared queue, on a busy machine) spread
    # from 0.05 ms to 2 ms. Divided by those, the pages with the smallest ones looked 40x slower.
    rtts = [0.002, 0.0018, 0.0015, 0.0012, 0.00005, 0.00006]
    ctl = (128 << 10, 0.02, 0.03)  # the control's fetches: all at their usual speed
    pages = [_measurement(i, nbytes=128 << 10, transfer=0.25, rtt=rtt, control=ctl)
             for i, rtt in enumerate(rtts)]
    samples = [sample_from_json(i, m.target.url, OK, to_data(m), {0: to_data(m.hops[0].control)})
               for i, m in enumerate(pages)]
    assert all(s.per_rtt == pytest.approx((128 << 10) * RTT_FLOOR / 0.25) for s in samples)
    assert all(v.verdict == "ok" for v in judge_samples(samples).values())


def test_a_policed_page_is_throttled_whatever_the_round_trip_floor() -> None:
    # The lab's policer: 4 KB/s for one site, full speed for the others and at the control, on
    # a 0.1 ms network (every round trip under the floor).
    ctl = (128 << 10, 0.01, 0.0001)
    pages = [_measurement(i, nbytes=128 << 10, transfer=0.01, rtt=0.0001, control=ctl)
             for i in range(5)]
    pages.append(_measurement(9, nbytes=128 << 10, transfer=32.0, rtt=0.0001, control=ctl))
    samples = [sample_from_json(i, m.target.url, OK, to_data(m), {0: to_data(m.hops[0].control)})
               for i, m in enumerate(pages)]
    got = judge_samples(samples)
    assert got[5].verdict == "throttled", got[5]
    assert all(got[i].verdict == "ok" for i in range(5))
