"""The leaderboard page in a real browser: headless Chromium (Debian's `chromium` and
`chromium-driver`, installed here when missing and the machine allows it) driven by
Selenium. The table sorts on a click, the figure loads, the console stays clean."""

import shutil
import subprocess

import pytest

from harness.reports import leaderboard
from helpers import checkpoint, first, scripted_eval

pytestmark = pytest.mark.slow


def _browser() -> tuple[str, str]:
    """Paths of chromium and chromedriver, installing Debian's packages if needed."""
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if all(found):
        return found
    if shutil.which("apt-get") is None:
        pytest.skip("no chromium and no apt-get to install it")
    res = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "chromium",
                          "chromium-driver"], capture_output=True, text=True, timeout=600)
    found = shutil.which("chromium"), shutil.which("chromedriver")
    if res.returncode != 0 or not all(found):
        pytest.skip("chromium could not be installed: " + (res.stderr.strip()[-300:] or
                                                           "apt-get failed"))
    return found


@pytest.fixture(scope="module")
def driver():
    webdriver = pytest.importorskip("selenium.webdriver")
    chromium, chromedriver = _browser()
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    from selenium.webdriver.chrome.service import Service
    d = webdriver.Chrome(service=Service(chromedriver), options=opts)
    yield d
    d.quit()


def test_leaderboard_page_sorts_and_shows_its_figure(tmp_path, driver):
    root = tmp_path / "results"
    for name, k in (("mid", 10), ("top", 16), ("low", 3)):
        scripted_eval(checkpoint(tmp_path, name, 10, 0), root, first(k), first(k // 2))
    out = tmp_path / "board"
    (out / "analysis").mkdir(parents=True)
    (out / "analysis" / "extra.png").write_bytes(b"")  # a figure beside the board: linked
    paths = leaderboard.write(root, out, "vrbench leaderboard",
                              verdicts=["**A claim:** it holds, `measured`."], force=True)
    driver.set_window_size(1366, 800)  # a laptop's screen
    driver.get(paths["html"].as_uri())
    from selenium.webdriver.common.by import By

    def names():
        return [r.find_elements(By.TAG_NAME, "td")[0].text
                for r in driver.find_elements(By.CSS_SELECTOR, "#board tbody tr")]

    # the summary and the verdicts come first, above the table
    summary = driver.find_element(By.ID, "summary")
    table = driver.find_element(By.ID, "board")
    assert summary.location["y"] < table.location["y"]
    assert "A claim:" in summary.find_element(By.TAG_NAME, "strong").text
    assert "Best ID avg: top @ 10" in summary.text
    # the main table fits the screen: no scrolling sideways
    assert driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth")
    assert names() == ["low @ 10", "mid @ 10", "top @ 10"]
    header = driver.find_element(By.XPATH, "//th[text()='ID avg']")
    header.click()
    assert names() == ["low @ 10", "mid @ 10", "top @ 10"]  # ascending
    assert "asc" in header.get_attribute("class")
    header.click()
    assert names() == ["top @ 10", "mid @ 10", "low @ 10"]  # descending
    best = driver.find_elements(By.CSS_SELECTOR, "#board td.best")
    assert best and best[0].text.startswith("80.0")
    # a row's tasks and runs open under it
    details = driver.find_element(By.CSS_SELECTOR, "#board tbody tr details")
    assert not details.find_element(By.TAG_NAME, "ul").is_displayed()
    details.find_element(By.TAG_NAME, "summary").click()
    assert "count_shapes: 80.0" in details.text
    links = [a.get_attribute("href") for a in driver.find_elements(By.CSS_SELECTOR,
                                                                      "#figures a")]
    assert [link.rsplit("/", 2)[-2:] for link in links] == [["analysis", "extra.png"],
                                                            ["board", "leaderboard.png"]]
    width = driver.execute_script(
        "var i = document.getElementById('figure'); return i.complete ? i.naturalWidth : 0;")
    assert width > 100
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
