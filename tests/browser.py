"""A real browser for the page's tests: Debian's chromium, headless.

The page takes test steps from its URL's hash (#steps=seek:1.5;dump:name;...,
see player.js runSteps) and writes what it shows into <pre id="report">;
`--dump-dom` prints the page once its scripts have run. One browser start
checks a whole list of steps.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
import tempfile
from typing import Any
from urllib.parse import quote

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(url: str, budget_ms: int = 5000, timeout: float = 90) -> str:
    assert CHROMIUM, "chromium is needed (.ci/install-tools installs it)"
    with tempfile.TemporaryDirectory(prefix="autotrace-chromium-") as profile:
        result = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
             "--dump-dom", url],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    return result.stdout


def run_steps(url: str, steps: list[str], budget_ms: int = 5000) -> list[dict[str, Any]]:
    """The page at `url` driven through `steps`; each `dump:NAME` step's report."""
    dom = dump_dom(f"{url}#steps={quote(';'.join(steps))}", budget_ms)
    match = re.search(r'<pre id="report">(.*?)</pre>', dom, re.S)
    assert match and match.group(1), f"the page reported nothing: {dom[-2000:]}"
    return json.loads(html.unescape(match.group(1)))


def pane_text(report: dict[str, Any], pane: int) -> str:
    return "\n".join(report["panes"][str(pane)])


class Browser:
    """Chromium driven by chromedriver (selenium), for pages that change while
    they are open (a live share). The page's own functions (seek, report,
    shownText...) are called as its keys and buttons call them."""

    def __init__(self) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        driver = shutil.which("chromedriver")
        assert CHROMIUM and driver, "chromium and chromium-driver (.ci/install-tools)"
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update"):
            options.add_argument(flag)
        # The driver is the one installed: selenium must not fetch one.
        self.driver = webdriver.Chrome(service=Service(executable_path=driver),
                                       options=options)

    def open(self, url: str) -> None:
        self.driver.get(url)

    def call(self, script: str) -> Any:
        return self.driver.execute_script(script)

    def shown(self) -> str:
        return str(self.call("return D ? shownText() : ''"))

    def close(self) -> None:
        self.driver.quit()
