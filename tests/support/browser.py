"""Headless Chromium for tests that look at pages as a user does: Debian's chromium, driven by playwright.

Nothing downloads a browser (``playwright install`` is never run): the browser
is /usr/bin/chromium (``apt-get install -y chromium``; ``make test`` installs it
when missing). Screenshots are the tests' artifacts: under the test's tmp_path,
and copied to ``ESPSTREAM_TEST_ARTIFACTS`` when that is set.
"""

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")


@contextmanager
def chromium_page(base_url: str) -> Iterator["Page"]:  # noqa: F821 - playwright's, imported here
    """A page of a fresh headless Chromium whose relative URLs go to ``base_url``; a dialog (alert()) fails the test."""
    from playwright.sync_api import sync_playwright

    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (make test installs it)")
    # Chromium's sandbox refuses to run as root, as in containers and CI.
    args = ["--no-sandbox"] if os.geteuid() == 0 else []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)
        try:
            page = browser.new_context(base_url=base_url, viewport={"width": 1280, "height": 900}).new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            yield page
            assert not dialogs, f"a script ran on the page: dialogs {dialogs}"
        finally:
            browser.close()


def screenshot(page: "Page", tmp_path: Path, name: str) -> Path:  # noqa: F821
    """The whole page as ``name``.png in tmp_path, copied to ESPSTREAM_TEST_ARTIFACTS if set."""
    path = tmp_path / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    artifacts = os.environ.get("ESPSTREAM_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(artifacts) / path.name)
    return path
