"""The dashboard in a real browser: Debian's headless Chromium driven by Selenium through
Debian's chromedriver (no browser is downloaded). `make test` installs both.

Log in, see the two demo modems, send from the form, watch the message reach delivered
(the page's own live refresh updates it), inject a fault in demo mode and watch the
modem's state change on the overview. Screenshots go to the test's tmp dir.
"""

from __future__ import annotations

import os
import shutil

import pytest

from conftest import ADMIN_PASSWORD
from web_kit import demo_daemon_on_simulated_modems

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-dev-shm-usage")

pytestmark = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
    reason="Debian chromium and chromium-driver are not installed (make test installs them)")


@pytest.fixture
def demo_daemon(make_config, run_daemon):
    with demo_daemon_on_simulated_modems(make_config, run_daemon,
                                         step_seconds=0.3) as (daemon, _network):
        yield daemon


@pytest.fixture
def browser(tmp_path, monkeypatch):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    monkeypatch.setenv("SE_OFFLINE", "true")          # Selenium Manager must fetch nothing
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    options.add_argument("--window-size=1200,1000")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()
    shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def _wait(driver, condition, timeout: float = 60.0):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def _text_of(css: str):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By

    def read(driver):
        try:   # the live refresh swaps the block, a page may still be loading
            return driver.find_element(By.CSS_SELECTOR, css).text
        except (StaleElementReferenceException, NoSuchElementException):
            return ""
    return read


def test_log_in_send_watch_delivery_and_a_fault(demo_daemon, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select
    base = f"http://127.0.0.1:{demo_daemon.port}"
    shots = tmp_path / "screenshots"
    shots.mkdir()

    browser.get(base + "/")
    assert browser.current_url.endswith("/login")
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys("wrong password")
    browser.find_element(By.ID, "login-button").click()
    _wait(browser, lambda d: "Wrong user or password" in _text_of("#login-error")(d))
    browser.find_element(By.NAME, "username").send_keys("admin")
    browser.find_element(By.NAME, "password").send_keys(ADMIN_PASSWORD)
    browser.find_element(By.ID, "login-button").click()
    _wait(browser, lambda d: "ready" in _text_of("#modem-slot2 .badge")(d))
    browser.save_screenshot(str(shots / "1-overview.png"))

    header = "return getComputedStyle(document.querySelector('header')).backgroundColor"
    assert browser.execute_script(header) == "rgb(29, 53, 87)", "the stylesheet did not apply"
    ids = "return [...document.querySelectorAll('article.modem')].map(e => e.id)"
    assert browser.execute_script(ids) == ["modem-slot1", "modem-slot2"]
    _wait(browser, lambda d: _text_of("#modem-slot1 .badge")(d) == "ready")

    browser.find_element(By.LINK_TEXT, "Send").click()
    _wait(browser, lambda d: _text_of("#send-form")(d) != "")
    browser.find_element(By.NAME, "recipient").send_keys("+36201234567")
    text = browser.find_element(By.NAME, "text")
    # the form counts as the server splits (found by a helper: extension characters were
    # one septet and a backtick GSM, so the form said 1 part where 2 were charged)
    for typed, expected in (("a" * 159 + "{", "2 part(s), GSM 7-bit"),
                            ("a" * 100 + "`", "2 part(s), UCS-2"),
                            ("a" * 160, "1 part(s), GSM 7-bit")):
        text.clear()
        text.send_keys(typed)
        assert expected in browser.find_element(By.ID, "count").text, typed
    text.clear()
    text.send_keys("Hello from the dashboard")
    assert "1 part(s)" in browser.find_element(By.ID, "count").text    # the page's own JS
    browser.find_element(By.ID, "send-button").click()
    _wait(browser, lambda d: "/ui/messages/" in d.current_url)
    message_id = browser.current_url.split("/ui/messages/")[1].split("?")[0]
    # No reload from here: the page's live refresh must bring the new state in.
    _wait(browser, lambda d: _text_of("#message-state")(d) == "delivered")
    assert demo_daemon.journal.get_message(message_id)["state"] == "delivered"
    timeline = _text_of("#timeline")(browser)
    assert "accepted" in timeline and "submitted" in timeline and "delivered" in timeline
    browser.save_screenshot(str(shots / "2-delivered.png"))

    browser.find_element(By.LINK_TEXT, "Admin").click()
    _wait(browser, lambda d: _text_of("#fault-form")(d) != "")
    browser.save_screenshot(str(shots / "3-admin.png"))
    form = browser.find_element(By.ID, "fault-form")
    Select(form.find_element(By.NAME, "slot")).select_by_value("slot1")
    Select(form.find_element(By.NAME, "fault")).select_by_value("unplug")
    browser.find_element(By.ID, "fault-button").click()
    _wait(browser, lambda d: "unplug injected on slot1" in _text_of("#flash")(d))

    browser.find_element(By.LINK_TEXT, "Overview").click()
    _wait(browser, lambda d: _text_of("#modem-slot1 .badge")(d) not in ("", "ready"))
    _wait(browser, lambda d: _text_of("#modem-slot2 .badge")(d) == "ready")
    _wait(browser, lambda d: "modem:slot1" in _text_of("#alerts")(d))
    browser.save_screenshot(str(shots / "4-fault.png"))

    browser.set_window_size(390, 844)          # a phone
    browser.get(base + "/")
    width = browser.execute_script("return document.documentElement.scrollWidth")
    assert width <= 390, "the overview must not scroll sideways on a phone"
    browser.save_screenshot(str(shots / "5-phone.png"))
    assert sorted(p.name for p in shots.iterdir()) == [
        "1-overview.png", "2-delivered.png", "3-admin.png", "4-fault.png", "5-phone.png"]
