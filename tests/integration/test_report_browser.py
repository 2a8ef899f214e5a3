"""`probe report` in a real headless Chromium: it loads offline, cleanly, with the right numbers.

Chromium and chromedriver come from Debian (.ci/setup). The browser is started with every
background service off and a host resolver that resolves nothing, and loads the report from
file://: it has no way to send a packet anywhere. The screenshot is kept as a test artifact
(``$PROBE_TEST_ARTIFACTS``, default ``test-artifacts/`` in the repository).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))
from report_samples import LATEST, build

from probe.cli import cli

pytestmark = pytest.mark.integration

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ARTIFACTS = Path(os.environ.get("PROBE_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / "test-artifacts"))


def _need_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.path.exists(p)]
    if missing and os.environ.get("CI"):
        pytest.fail(f"{missing} missing: .ci/setup installs chromium and chromium-driver")
    if missing:
        pytest.skip(f"{missing} not installed (apt-get install chromium chromium-driver)")
    pytest.importorskip("selenium")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[object]:
    _need_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-default-apps", "--disable-extensions", "--no-proxy-server",
                "--host-resolver-rules=MAP * ~NOTFOUND", "--window-size=1280,900",
                f"--user-data-dir={tmp_path / 'chromium-profile'}"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(CHROMEDRIVER, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(options=opts, service=service)
    try:
        yield driver
    finally:
        driver.quit()


def test_report_loads_in_chromium_offline_with_the_expected_numbers(browser, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    db = build(tmp_path / "multi.db")
    out = tmp_path / "report.html"
    r = CliRunner().invoke(cli, ["report", "--db", str(db), "--out", str(out)])
    assert r.exit_code == 0, r.output
    browser.get(out.as_uri())

    assert browser.title == "probe report"
    # Nothing was fetched (CSP forbids it; the page has nothing to fetch) and nothing complained.
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert errors == []

    # Summary per vantage point, with each one's latest verdict counts.
    rows = browser.find_elements(By.CSS_SELECTOR, "#summary tbody tr")
    assert [row.get_attribute("data-vantage") for row in rows] == ["ams-vps", "msk-isp1", "spb-isp2"]
    for row in rows:
        latest = LATEST[row.get_attribute("data-vantage")]
        cells = {v: int(row.find_element(By.CSS_SELECTOR, f"td.v-{v}").text)
                 for v in ("ok", "blocked", "reset", "hijacked", "down")}
        assert cells == {v: latest.count(v) for v in cells}
    msk = rows[1].text.split()
    assert msk[-1] == "50.0%" and "AS64500" in msk

    # Heatmap: the three URLs interfered with somewhere, at three vantage points, drawn with a
    # real size; the one down everywhere (site4) is apart, folded.
    heat = browser.find_element(By.ID, "heatmap")
    assert heat.size["width"] > 300 and heat.size["height"] > 100
    cells = browser.find_elements(By.CSS_SELECTOR, "#heatmap rect.cell")
    assert len(cells) == 3 * 3
    quiet = browser.find_elements(By.CSS_SELECTOR, "#heatmap-quiet rect.v-down")
    assert {c.get_attribute("data-url") for c in quiet} == {"http://site4.example.org/"}
    hijacked = {(c.get_attribute("data-url"), c.get_attribute("data-vantage"))
                for c in browser.find_elements(By.CSS_SELECTOR, "#heatmap rect.v-hijacked")}
    assert hijacked == {("http://site1.example.org/", "msk-isp1"),
                        ("http://site1.example.org/", "spb-isp2")}

    # Timeline: the three (URL, vantage point) pairs whose verdict changed, two segments each;
    # above it, what the latest runs changed as `probe diff` lists it: spb-isp2's unblocking.
    assert len(browser.find_elements(By.CSS_SELECTOR, "#timeline rect.seg")) == 6
    changes = [(r.get_attribute("data-change"), r.text.split()[0])
               for r in browser.find_elements(By.CSS_SELECTOR, "#changes tbody tr")]
    assert sorted(changes) == [("newly_blocked", "msk-isp1"), ("unblocked", "spb-isp2")]
    # Technique mix: msk-isp1 has DNS hijack, TLS reset and an HTTP block page; spb-isp2 a hijack.
    techniques = sorted((t.get_attribute("data-vantage"), t.get_attribute("data-technique"))
                        for t in browser.find_elements(By.CSS_SELECTOR, "#techniques rect.tech"))
    assert techniques == [("msk-isp1", "blocked at HTTP"), ("msk-isp1", "hijacked at DNS"),
                          ("msk-isp1", "reset at TLS"), ("spb-isp2", "hijacked at DNS")]
    # Evidence: every non-ok latest verdict, with its reason in words and the step-by-step view.
    ev = browser.find_elements(By.CSS_SELECTOR, "#evidence tbody tr")
    assert len(ev) == 7
    assert "known block-page address in Russian Federation" in ev[0].text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#evidence details")) == 7
    heading = browser.find_element(By.ID, "evidence-h").text
    assert heading == "Evidence: 7 non-ok verdicts"

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(int(height) + 40, 6000))
    shot = ARTIFACTS / "report.png"
    assert browser.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
    shutil.copy(out, ARTIFACTS / "report.html")
