# ruff: noqa: RUF001  (Cyrillic text, verbatim from a real block page)
"""The lab's block page: the text of a real Russian ISP block page.

The sentence below is the body pattern of fingerprint ``ooni.ru_1`` in OONI's blocking
fingerprints (github.com/ooni/blocking-fingerprints, fingerprints_http.csv),
which Russian ISPs show for sites on Roskomnadzor's register. Credit: OONI blocking-fingerprints
(commit 171641e6; the repository has no license file). A classifier that knows OONI's
fingerprints names this page ``ooni.ru_1``; the page contains no other fingerprint's pattern.
"""

from __future__ import annotations

__all__ = ["BLOCKPAGE_FINGERPRINT", "BLOCKPAGE_HTML", "BLOCKPAGE_MARKER", "blockpage_response"]

#: The fingerprint a classifier should name for this page.
BLOCKPAGE_FINGERPRINT = "ooni.ru_1"

#: The fingerprint's body pattern, verbatim.
BLOCKPAGE_MARKER = (
    "распространение которой в Российской Федерации запрещено! Данный ресурс включен в "
    "ЕДИНЫЙ РЕЕСТР доменных имен, указателей страниц сайтов в сети «Интернет» и сетевых "
    "адресов, позволяющих идентифицировать"
)

BLOCKPAGE_HTML = (
    "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n"
    "<title>Ресурс недоступен</title>\n</head>\n<body>\n"
    "<h2>Уважаемый абонент!</h2>\n"
    "<p>Запрашиваемый Вами ресурс содержит информацию, " + BLOCKPAGE_MARKER + " сайты в сети "
    "«Интернет», содержащие информацию, распространение которой в Российской Федерации "
    "запрещено.</p>\n</body>\n</html>\n"
).encode()


def blockpage_response(keep_alive: bool = False) -> bytes:
    """A complete HTTP/1.1 response carrying the block page (as ISP middleboxes send it)."""
    head = (
        "HTTP/1.1 200 OK\r\n"
        "Content-Type: text/html; charset=utf-8\r\n"
        f"Content-Length: {len(BLOCKPAGE_HTML)}\r\n"
        f"Connection: {'keep-alive' if keep_alive else 'close'}\r\n\r\n"
    )
    return head.encode() + BLOCKPAGE_HTML
