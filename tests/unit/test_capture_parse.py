"""The capture's pure parts (probe/measure/capture.py): which datagrams answer a DNS query."""

from __future__ import annotations

import dns.flags
import dns.message
import pytest

from probe.measure.capture import answers_query


def _query(name: str = "News.Example.com", qtype: str = "A") -> dns.message.Message:
    q = dns.message.make_query(name, qtype, id=4711)
    q.flags = dns.flags.RD
    return q


def _reply(query: dns.message.Message, **change: object) -> bytes:
    r = dns.message.make_response(query)
    for k, v in change.items():
        setattr(r, k, v)
    return r.to_wire()


QUERY = _query()


@pytest.mark.parametrize(("body", "answers"), [
    (_reply(QUERY), True),
    (_reply(_query("news.EXAMPLE.com")), True),  # 0x20 case: the same name
    (_reply(QUERY, id=(QUERY.id + 1) & 0xFFFF), False),  # another id
    (_reply(_query("other.example.com")), False),  # another question
    (_reply(_query(qtype="AAAA")), False),  # another type
    (QUERY.to_wire(), False),  # QR not set: our own query echoed
    (_reply(QUERY)[:20], False),  # cut inside the question
    (QUERY.to_wire()[:2] + b"\x81\x80" + b"\x00" * 40, False),  # our id, then junk
    (b"", False),
])
def test_only_a_reply_to_the_query_answers_it(body: bytes, answers: bool) -> None:
    assert answers_query(body, QUERY.to_wire()) is answers


def test_a_reply_with_two_questions_does_not_answer() -> None:
    r = dns.message.make_response(QUERY)
    r.question.append(_query("other.example.com").question[0])
    assert not answers_query(r.to_wire(), QUERY.to_wire())
