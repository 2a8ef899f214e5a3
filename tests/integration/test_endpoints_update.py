"""`probe testlists update --endpoints-url` against a loopback mirror of the messaging endpoint
list (never a real URL: nothing here has a default source, and every mirror is on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_testlists_update import data_dir, mirror  # noqa: F401  (fixtures)

from probe.cli import cli
from probe.inputs.endpointlists import MESSAGING_LIST, load_endpoints, messaging_list

pytestmark = pytest.mark.integration

PACKAGED = MESSAGING_LIST.parent


@pytest.fixture
def endpoints_mirror(mirror: tuple[str, Path]) -> Iterator[tuple[str, Path]]:  # noqa: F811
    """(URL, directory): the packaged list with one more WhatsApp endpoint, and Signal's CA."""
    url, root = mirror
    d = root / "endpoints"
    d.mkdir()
    text = MESSAGING_LIST.read_text(encoding="utf-8")
    (d / "messaging.csv").write_text(text + "whatsapp,e17,e17.whatsapp.net,443,,,chat,mirror,2026-12-08\n")
    shutil.copy(PACKAGED / "signal-ca.pem", d / "signal-ca.pem")
    yield f"{url}endpoints/", d


def _update(mirror_url: str, endpoints_url: str, *extra: str) -> tuple[int, str]:
    r = CliRunner().invoke(cli, ["testlists", "update", "--source-url", mirror_url,
                                 "--endpoints-url", endpoints_url, *extra])  # fmt: skip
    return r.exit_code, r.output


def test_the_endpoint_list_is_installed_with_its_ca_and_measured_from_then_on(
    mirror: tuple[str, Path], endpoints_mirror: tuple[str, Path], data_dir: Path  # noqa: F811
) -> None:
    assert messaging_list() == MESSAGING_LIST  # before: the packaged list
    code, out = _update(mirror[0], endpoints_mirror[0])
    assert code == 0, out
    installed = data_dir / "endpoints"
    assert "messaging endpoints: 52 (+1, -0)" in " ".join(out.split())
    assert messaging_list() == installed / "messaging.csv"
    eps = load_endpoints([messaging_list()])
    assert any(e.address == "e17.whatsapp.net" for e in eps)
    assert all(Path(e.ca).parent == installed for e in eps if e.kind == "signal")
    origin = (installed / "endpoints-origin.json").read_text()
    digest = hashlib.sha256((installed / "signal-ca.pem").read_bytes()).hexdigest()
    assert endpoints_mirror[0] in origin and digest in origin
    assert not list(data_dir.glob(".endpoints.update-*"))


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("messaging.csv", "<html>rate limited</html>\n", "missing column"),
        ("messaging.csv", "kind,name,address,port\ntor,x,192.0.2.1,443\n", "not a messaging kind"),
        ("messaging.csv", "kind,name,address,port\nsignal,x,chat.example,443\n", "no endpoint of telegram"),
        ("messaging.csv", "kind,name,address,port,ca\nsignal,x,chat.example,443,../../etc/x.pem\n",
         "must be a .pem file name"),
        ("signal-ca.pem", "not a certificate\n", "not a PEM certificate file"),
        ("signal-ca.pem", None, "HTTP 404"),
    ],
)  # fmt: skip
def test_a_bad_endpoint_list_never_replaces_the_installed_one(
    mirror: tuple[str, Path], endpoints_mirror: tuple[str, Path], data_dir: Path,  # noqa: F811
    name: str, content: str | None, reason: str,
) -> None:
    code, out = _update(mirror[0], endpoints_mirror[0])
    assert code == 0, out
    installed = data_dir / "endpoints"
    before = {p.name: p.read_bytes() for p in installed.iterdir()}
    target = endpoints_mirror[1] / name
    if content is None:
        target.unlink()
    else:
        target.write_text(content)
    code, out = _update(mirror[0], endpoints_mirror[0])
    assert code == 1 and reason in " ".join(out.split()) and "installed endpoint list unchanged" in out
    assert {p.name: p.read_bytes() for p in installed.iterdir()} == before


def test_a_list_that_loses_more_than_half_of_its_endpoints_needs_force(
    mirror: tuple[str, Path], endpoints_mirror: tuple[str, Path], data_dir: Path  # noqa: F811
) -> None:
    lst = endpoints_mirror[1] / "messaging.csv"
    lines = lst.read_text().splitlines()
    small = [lines[0], *[x for x in lines if x.startswith(("telegram-web", "whatsapp-web", "signal,chat"))]]
    lst.write_text("\n".join(small) + "\n")
    code, out = _update(mirror[0], endpoints_mirror[0])
    assert code == 1 and "loses more than half" in out
    code, out = _update(mirror[0], endpoints_mirror[0], "--force")
    assert code == 0, out
    assert len(load_endpoints([messaging_list()])) == len(small) - 1


def test_a_source_that_is_not_http_is_refused_before_anything_is_fetched(
    mirror: tuple[str, Path], data_dir: Path  # noqa: F811
) -> None:
    code, out = _update(mirror[0], "file:///etc/")
    assert code == 1 and "must be an http:// or https:// URL" in out
    assert not (data_dir / "testlists").exists()
