"""The dashboard in a real browser: Debian's headless Chromium driven by Selenium, over uvicorn on loopback,
each page rendered from a store filled by real runs. What is checked is what a person sees and can do.

Needs ``apt-get install -y chromium chromium-driver`` (Selenium's own browser download is not used);
skipped with the reason when they are absent. ``CRMSYNC_SCREENSHOTS=docs/screenshots`` also saves a
full-page PNG of each page there.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from connector.causes import HINTS
from connector.report import build_funnel
from connector.store import open_store
from connector.web.app import create_app
from tests.web.conftest import HOSTILE_EMAIL, NOW, PICKLIST, SHARED_EMAIL, Filled, fill, make_config

CHROMIUM = os.environ.get("CRMSYNC_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CRMSYNC_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = os.environ.get("CRMSYNC_SCREENSHOTS")

_missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        bool(_missing),
        reason=f"no browser: {', '.join(_missing)} not found (apt-get install -y chromium chromium-driver)",
    ),
]

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
from selenium.common.exceptions import NoAlertPresentException, StaleElementReferenceException  # noqa: E402
from selenium.webdriver import Chrome as WebDriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.wait import WebDriverWait  # noqa: E402

PAGES = {
    "jobs": "/",
    "runs": "/runs",
    "funnel": "/funnel",
    "dead-letters": "/dead-letters",
    "contact": f"/contacts?key={quote(SHARED_EMAIL)}",
}

CONTRAST = """
const luminance = rgb => {
  const [r, g, b] = rgb.map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const parse = text => {
  const parts = text.match(/rgba?\\(([^)]+)\\)/)[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
  return {rgb: parts.slice(0, 3), alpha: parts.length > 3 ? parts[3] : 1};
};
const background = element => {
  for (let e = element; e; e = e.parentElement) {
    const colour = parse(getComputedStyle(e).backgroundColor);
    if (colour.alpha > 0) return colour.rgb;
  }
  return [255, 255, 255];
};
const found = [];
for (const element of document.querySelectorAll('body *')) {
  const own = Array.from(element.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
  const box = element.getBoundingClientRect();
  if (!own || box.width === 0 || box.height === 0) continue;
  const style = getComputedStyle(element);
  const fg = parse(element instanceof SVGElement ? style.fill : style.color).rgb;
  const [a, b] = [luminance(fg), luminance(background(element))];
  found.push([element.tagName, element.textContent.trim().slice(0, 40), (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)]);
}
return found;
"""


@pytest.fixture(scope="module")
def filled_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Filled]:
    folder = tmp_path_factory.mktemp("web-browser")
    url = f"sqlite:///{folder / 'state.db'}"
    store = open_store(url)
    try:
        yield fill(store, make_config(folder, url))
    finally:
        store.close()


@pytest.fixture(scope="module")
def site(filled_sqlite: Filled) -> Iterator[str]:
    """The dashboard served by uvicorn on a free loopback port; its base address."""
    import uvicorn

    app = create_app(filled_sqlite.store, config=filled_sqlite.config, token=None, clock=lambda: NOW)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60  # a bound for a loaded machine, not a speed check
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=60)
    listener.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(browser: WebDriver, site: str, path: str) -> None:
    browser.get(site + path)
    assert browser.find_element(By.TAG_NAME, "h1").is_displayed()


def wait_for_heading(browser: WebDriver, text: str) -> None:
    """Wait for the page whose ``h1`` reads ``text`` (after a click or a submit); the bound is for a loaded machine."""
    WebDriverWait(browser, 120, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda driver: driver.find_element(By.TAG_NAME, "h1").text == text
    )


def shoot(browser: WebDriver, name: str) -> None:
    """With ``CRMSYNC_SCREENSHOTS=DIR``: a full-page PNG of the current page as DIR/<name>.png."""
    if not SCREENSHOTS:
        return
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    width, height = browser.execute_script(
        "return [document.documentElement.clientWidth, Math.ceil(document.body.getBoundingClientRect().bottom)]"
    )
    shot = browser.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1},
        },
    )
    (folder / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


def cells(row: WebElement) -> list[str]:
    return [cell.text for cell in row.find_elements(By.CSS_SELECTOR, "th, td")]


def no_alert(browser: WebDriver) -> bool:
    try:
        browser.switch_to.alert  # noqa: B018 - raises when no alert is open
    except NoAlertPresentException:
        return True
    return False


# -- what a person sees -----------------------------------------------------------------


def test_jobs_page_shows_each_job_health_and_next_run(browser: WebDriver, site: str) -> None:
    open_page(browser, site, "/")
    rows = {
        row.find_element(By.CSS_SELECTOR, "th a").text: row
        for row in browser.find_elements(By.CSS_SELECTOR, "tbody tr")
    }
    hubspot = rows["hubspot-lifecycle"].text
    assert "failing" in hubspot and "QuotaExhausted" in hubspot
    assert "2026-11-20 09:15:00 UTC" in hubspot
    salesforce = rows["salesforce-lifecycle"].text
    assert "ok" in salesforce and "2026-11-20 09:07:00 UTC" in salesforce
    shoot(browser, "jobs")


def test_runs_page_leads_to_a_run_with_its_counts(browser: WebDriver, site: str, filled_sqlite: Filled) -> None:
    open_page(browser, site, "/runs")
    assert len(browser.find_elements(By.CSS_SELECTOR, "tbody tr")) == 4
    shoot(browser, "runs")
    first = filled_sqlite.results[0]
    browser.find_element(By.LINK_TEXT, first.run_id).click()
    wait_for_heading(browser, "Run of hubspot-lifecycle")
    assert browser.current_url == f"{site}/runs/{first.run_id}"
    rows = {cells(row)[0]: cells(row)[1:] for row in browser.find_elements(By.CSS_SELECTOR, "tbody tr")}
    assert rows["written"] == [str(first.counts["hubspot"].written)]
    assert rows["rejected (dead letters)"] == ["3"]
    shoot(browser, "run")


def test_the_html_funnel_report_shows_the_figures_and_defines_every_column(
    browser: WebDriver, filled_sqlite: Filled, tmp_path: Path
) -> None:
    from connector.report import COLUMNS, funnel_html

    funnel = build_funnel(filled_sqlite.store, config=filled_sqlite.config, now=NOW)
    page = tmp_path / "funnel.html"
    page.write_text(funnel_html(funnel, generated_at=NOW), encoding="utf-8")

    browser.get(page.as_uri())

    rows = [cells(row) for row in browser.find_elements(By.CSS_SELECTOR, "table tr")][1:]
    assert [row[:4] for row in rows[: len(funnel.rungs)]] == [
        [rung.stage.value, str(rung.on), str(rung.reached), str(rung.entered)] for rung in funnel.rungs
    ]
    assert rows[-2][:2] == ["beyond the ladder", str(funnel.beyond_ladder)]
    terms = [element.text for element in browser.find_elements(By.CSS_SELECTOR, "dl dt")]
    assert terms == list(COLUMNS)
    shoot(browser, "funnel-report")


def test_failed_run_shows_its_error(browser: WebDriver, site: str, filled_sqlite: Filled) -> None:
    open_page(browser, site, f"/runs/{filled_sqlite.failed_run_id}")
    error = browser.find_element(By.CSS_SELECTOR, "pre.error").text
    assert error == "QuotaExhausted: contacts.batch_update: daily API allocation used up"


def test_funnel_page_shows_the_funnel_numbers(browser: WebDriver, site: str, filled_sqlite: Filled) -> None:
    open_page(browser, site, "/funnel")
    funnel = build_funnel(filled_sqlite.store, config=filled_sqlite.config, now=NOW)
    labels = [element.text for element in browser.find_elements(By.CSS_SELECTOR, "svg.chart text.value")]
    assert labels == [f"{rung.reached} reached, {rung.on} on it" for rung in funnel.rungs]
    table = [cells(row)[:4] for row in browser.find_elements(By.CSS_SELECTOR, "table tbody tr")]
    assert table[: len(funnel.rungs)] == [
        [rung.stage.value, str(rung.on), str(rung.reached), str(rung.entered)] for rung in funnel.rungs
    ]
    assert table[-1][:2] == ["beyond the ladder", str(funnel.beyond_ladder)]
    bars = browser.find_elements(By.CSS_SELECTOR, "svg.chart rect.reached")
    widths = [bar.rect["width"] for bar in bars]
    assert widths == sorted(widths, reverse=True) and widths[0] > 0  # the ladder narrows as it climbs
    shoot(browser, "funnel")


def test_dead_letters_page_shows_each_cause_with_its_hint(browser: WebDriver, site: str) -> None:
    open_page(browser, site, "/dead-letters")
    sections = browser.find_elements(By.CSS_SELECTOR, "section.cause")
    headings = [section.find_element(By.TAG_NAME, "h2").text for section in sections]
    assert headings == [f"{PICKLIST} 2 record(s)", "VALIDATION_ERROR 1 record(s)"]
    assert sections[0].find_element(By.CSS_SELECTOR, ".hint").text == f"What to do: {HINTS[PICKLIST].replace('`', '')}"
    reasons = [cell.text for cell in sections[0].find_elements(By.CSS_SELECTOR, "td.reason")]
    # the CRM's hostile reason is shown as the text it is, and nothing ran
    assert "<script>alert('pwned')</script> [/bold] \\x1b[31mred\\x1b[0m \\u202eevil" in reasons
    assert no_alert(browser)
    assert browser.execute_script("return document.scripts.length") == 0
    shoot(browser, "dead-letters")


def test_contact_search_by_keyboard_shows_the_history(browser: WebDriver, site: str) -> None:
    open_page(browser, site, "/contacts")
    shoot(browser, "contacts")
    field = browser.find_element(By.ID, "key")
    assert browser.find_element(By.CSS_SELECTOR, "label[for=key]").text == "E-mail or connection:id"
    field.send_keys(SHARED_EMAIL, Keys.ENTER)
    wait_for_heading(browser, f"Contact {SHARED_EMAIL}")
    history = browser.find_elements(By.CSS_SELECTOR, "table.history tbody tr")
    moves = [cells(row)[1:4] for row in history]
    assert moves == [
        ["hubspot:c0003", "–", "mql"],
        ["hubspot:c0003", "mql", "sql"],
        ["salesforce:00Q000000000000003", "–", "mql"],
    ]
    assert "The rules now: sql" in browser.find_element(By.TAG_NAME, "main").text
    shoot(browser, "contact")


def test_hostile_contact_is_shown_as_text(browser: WebDriver, site: str) -> None:
    open_page(browser, site, f"/contacts?key={quote(HOSTILE_EMAIL)}")
    main = browser.find_element(By.TAG_NAME, "main").text
    assert "<script>alert('pwned')</script> [/bold] \\x1b[31mred\\x1b[0m \\u202eevil nul\\x00here" in main
    assert no_alert(browser)
    shoot(browser, "contact-hostile")


def test_runs_filtered_to_one_tenant_connection_by_its_control(browser: WebDriver, site: str) -> None:
    from selenium.webdriver.support.select import Select

    open_page(browser, site, "/runs")
    assert browser.find_element(By.CSS_SELECTOR, "label[for=connection]").text == "Tenant / connection"
    Select(browser.find_element(By.ID, "connection")).select_by_visible_text("salesforce")
    browser.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]").click()
    WebDriverWait(browser, 120).until(lambda driver: "connection=salesforce" in driver.current_url)
    rows = [cells(row)[1] for row in browser.find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert rows == ["salesforce-lifecycle"]
    # the choice stays shown, and the other pages take the same filter
    assert Select(browser.find_element(By.ID, "connection")).first_selected_option.text == "salesforce"
    open_page(browser, site, "/dead-letters?connection=salesforce")
    assert "No open dead letter in salesforce." in browser.find_element(By.TAG_NAME, "main").text
    shoot(browser, "runs-by-connection")


def test_a_hostile_connection_name_in_the_address_is_shown_as_text(browser: WebDriver, site: str) -> None:
    browser.get(site + "/funnel?connection=" + quote("<script>alert('tenant')</script><img src=x onerror=alert(1)>"))
    main = browser.find_element(By.TAG_NAME, "main").text
    assert "No connection named \"<script>alert('tenant')</script><img src=x onerror=alert(1)>\"" in main
    assert no_alert(browser)
    assert browser.execute_script("return document.scripts.length + document.images.length") == 0
    # the one console entry is the 400 itself: no script or image was even tried (the policy would log it)
    logs = [entry["message"] for entry in browser.get_log("browser")]
    assert len(logs) == 1 and "status of 400" in logs[0], logs


# -- keyboard, focus, contrast -----------------------------------------------------------


def test_keyboard_reaches_the_skip_link_then_every_page_link(browser: WebDriver, site: str) -> None:
    open_page(browser, site, "/")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    skip = browser.switch_to.active_element
    assert skip.text == "Skip to content" and skip.rect["y"] >= 0  # shown when focused
    skip.send_keys(Keys.ENTER)
    WebDriverWait(browser, 120).until(lambda driver: driver.switch_to.active_element.get_attribute("id") == "main")

    open_page(browser, site, "/")
    wanted = {site + path for path in ("/", "/runs", "/funnel", "/dead-letters", "/contacts")}
    reached: set[str] = set()
    for _ in range(15):
        browser.switch_to.active_element.send_keys(Keys.TAB)
        focused = browser.switch_to.active_element
        href = focused.get_attribute("href")
        if href in wanted and focused.find_elements(By.XPATH, "ancestor::nav"):
            reached.add(href)
            assert focused.value_of_css_property("outline-style") == "solid"  # focus is visible
            assert float(focused.value_of_css_property("outline-width").removesuffix("px")) >= 2
    assert reached == wanted


@pytest.mark.parametrize("name", list(PAGES))
def test_text_contrast_is_at_least_4_5_to_1(browser: WebDriver, site: str, name: str) -> None:
    open_page(browser, site, PAGES[name])
    found = browser.execute_script(CONTRAST)
    assert found, "no text measured"
    low = [(tag, text, round(ratio, 2)) for tag, text, ratio in found if ratio < 4.5]
    assert low == []


@pytest.mark.parametrize("name", list(PAGES))
def test_no_console_error_or_blocked_resource(browser: WebDriver, site: str, name: str) -> None:
    open_page(browser, site, PAGES[name])
    logs = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert logs == []
