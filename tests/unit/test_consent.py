"""Informed consent: each path of ensure_consent, and the remembered acceptance."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from probe import __version__
from probe.host import consent
from probe.host.consent import (
    RISK_TEXT,
    config_dir,
    consent_file,
    ensure_consent,
    has_consented,
    record_consent,
    revoke_consent,
)


class Console:
    """Records what ensure_consent shows and asks; answers confirm() with ``answer``."""

    def __init__(self, answer: bool = False) -> None:
        self.answer = answer
        self.echoed: list[str] = []
        self.asked: list[str] = []

    def echo(self, text: str) -> None:
        self.echoed.append(text)

    def confirm(self, text: str) -> bool:
        self.asked.append(text)
        return self.answer


def test_config_dir_follows_env(tmp_config: Path) -> None:
    assert config_dir() == tmp_config
    assert consent_file().parent == tmp_config


def test_config_dir_defaults_to_click_app_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import click

    monkeypatch.delenv("PROBE_CONFIG_DIR")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert config_dir() == Path(click.get_app_dir("probe"))


def test_no_consent_file_means_no_consent(tmp_config: Path) -> None:
    assert not has_consented()


def test_record_consent_writes_time_and_version(tmp_config: Path) -> None:
    record_consent()
    data = json.loads(consent_file().read_text())
    assert data["accepted"] is True
    assert data["software_version"] == __version__
    assert data["accepted_at"].endswith("Z")
    assert has_consented()
    assert [p.name for p in tmp_config.iterdir()] == ["consent.json"]  # no temporary left behind


def test_corrupt_consent_file_means_no_consent(tmp_config: Path) -> None:
    tmp_config.mkdir(parents=True)
    consent_file().write_text("{not json")
    assert not has_consented()
    consent_file().write_text('{"accepted": false, "consent_version": 1}')
    assert not has_consented()


def test_consent_to_older_risk_text_is_asked_again(tmp_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record_consent()
    monkeypatch.setattr(consent, "CONSENT_VERSION", consent.CONSENT_VERSION + 1)
    assert not has_consented()


def test_revoke_consent_forgets_acceptance(tmp_config: Path) -> None:
    record_consent()
    assert revoke_consent() is True
    assert not has_consented()
    assert revoke_consent() is False


def test_accept_risks_records_and_proceeds_without_asking(tmp_config: Path) -> None:
    console = Console(answer=False)
    assert ensure_consent(True, False, console.echo, console.confirm) is True
    assert console.asked == []
    assert has_consented()


def test_previous_consent_proceeds_without_asking(tmp_config: Path) -> None:
    record_consent()
    console = Console(answer=False)
    assert ensure_consent(False, False, console.echo, console.confirm) is True
    assert ensure_consent(False, True, console.echo, console.confirm) is True
    assert console.asked == [] and console.echoed == []


def test_interactive_shows_risks_and_records_acceptance(tmp_config: Path) -> None:
    console = Console(answer=True)
    assert ensure_consent(False, True, console.echo, console.confirm) is True
    assert console.echoed == [RISK_TEXT]
    assert len(console.asked) == 1
    assert has_consented()


def test_interactive_refusal_does_not_proceed_or_record(tmp_config: Path) -> None:
    console = Console(answer=False)
    assert ensure_consent(False, True, console.echo, console.confirm) is False
    assert console.echoed == [RISK_TEXT]
    assert not has_consented()


def test_non_interactive_without_flag_refuses_without_asking(tmp_config: Path) -> None:
    console = Console(answer=True)
    assert ensure_consent(False, False, console.echo, console.confirm) is False
    assert console.asked == []
    assert not has_consented()
    assert "--accept-risks" in consent.CONSENT_REQUIRED_MESSAGE


def test_unwritable_config_dir_warns_but_accepted_run_proceeds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("PROBE_CONFIG_DIR", str(blocker / "config"))
    console = Console()
    assert ensure_consent(True, False, console.echo, console.confirm) is True
    assert len(console.echoed) == 1 and "could not remember" in console.echoed[0]
    assert not has_consented()


def test_risk_text_covers_the_risks() -> None:
    text = " ".join(RISK_TEXT.lower().split())
    for point in ("internet provider", "illegal", "identify your network", "your public address",
                  "only to remove it"):
        assert point in text
    # Version 1 said probe "never looks up or records your public IP address": it asks STUN
    # servers and its helpers for it (to scrub it).
    assert "never looks up" not in text


def test_risk_text_names_every_server_probe_contacts_by_default() -> None:
    from probe.core import settings as st

    words = RISK_TEXT.replace(",", " ").replace(";", " ").split()
    servers = (*st.DEFAULT_CONTROLS, *st.DEFAULT_STUN_SERVERS, *st.DEFAULT_STUN_FALLBACK,
               *st.DEFAULT_WHOAMI_NAMES, *st.MeasureConfig().doh, st.DEFAULT_TESTLISTS_SOURCE,
               st.DEFAULT_GEO_URL)  # fmt: skip
    for server in servers:
        host = st.server_host(server)
        assert host in words or f"{host}." in words, host  # whole, never cut by the wrapping
        assert st.OPERATORS[host].split(",")[0] in RISK_TEXT, host
    assert "no DNS-over-HTTPS server" in RISK_TEXT  # none by default, and it says so


@pytest.mark.parametrize("width", [consent.WIDTH, 60])
def test_risk_text_fits_the_terminal_without_breaking_a_word_or_a_command(width: int) -> None:
    text = consent.risk_text(width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width <= 79
    assert not any(line.rstrip().endswith("-") and not line.rstrip().endswith("--")
                   for line in lines)  # no word split at a hyphen
    for command in ("`probe run --category ...`", "`probe testlists update`", "`probe geo update`",
                    "`--require-identity`"):
        assert sum(command in line for line in lines) == 1, command
    # The same words as at any other width: wrapping only moved line breaks.
    assert text.split() == consent.risk_text(200).split()


def test_an_acceptance_of_the_first_text_is_asked_again(tmp_config: Path) -> None:
    tmp_config.mkdir(parents=True)
    consent_file().write_text('{"accepted": true, "consent_version": 1}')
    assert consent.CONSENT_VERSION == 2
    assert not has_consented()
