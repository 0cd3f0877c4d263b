"""A headless Debian Chromium for the browser tests, launched once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.support.web import CHROMIUM, CHROMIUM_ARGS, chromium_available


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not chromium_available():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium); never downloaded")
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()
