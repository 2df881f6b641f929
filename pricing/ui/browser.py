"""A headless Chromium for the page's browser test and its measurement: Debian's ``chromium``, driven by
Playwright for Python through ``executable_path``.

Playwright's own browser download needs a host this project cannot reach, so the browser is the system's.
``chromium_executable`` finds it, installing Debian's package with apt when it is missing and we are root;
otherwise it raises ``BrowserUnavailableError`` saying why (the test turns that into a failure, never a skip).
Nothing here imports Playwright at module level: the service imports ``pricing.ui`` without it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# The binary itself first: /usr/bin/chromium is a shell wrapper that adds flags of its own.
CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")
# The browser and a text font (only recommended by the package: without one, the page's text draws as boxes).
APT_PACKAGES = ("chromium", "fonts-liberation")
APT_TIMEOUT_S = 900
LAUNCH_ARGS = ("--disable-gpu", "--disable-dev-shm-usage", "--no-first-run")


class BrowserUnavailableError(RuntimeError):
    """No Chromium is installed and it cannot be installed here; the message says what to do."""


def find_chromium() -> str | None:
    """The path of an installed Chromium, or None."""
    for candidate in CANDIDATES:
        found = candidate if Path(candidate).is_file() and os.access(candidate, os.X_OK) else shutil.which(candidate)
        if found:
            return found
    return None


def chromium_executable() -> str:
    """An installed Chromium's path, installing Debian's ``chromium`` package first when missing and root."""
    found = find_chromium()
    if found:
        return found
    if os.geteuid() != 0:
        raise BrowserUnavailableError(
            f"Chromium is not installed and only root can install it here: apt-get install -y {' '.join(APT_PACKAGES)}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Wait for another apt run (other tests install packages too) rather than failing on its lock.
    for command in (
        ["apt-get", "update", "-o", "DPkg::Lock::Timeout=300"],
        ["apt-get", "install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300", *APT_PACKAGES],
    ):
        try:
            proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=APT_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise BrowserUnavailableError(f"`{' '.join(command)}` did not finish in {APT_TIMEOUT_S} s") from exc
        if proc.returncode != 0:
            output = (proc.stdout + proc.stderr)[-4000:]
            raise BrowserUnavailableError(f"`{' '.join(command)}` exited with {proc.returncode}:\n{output}")
    found = find_chromium()
    if not found:
        raise BrowserUnavailableError("apt-get installed chromium but no Chromium binary was found")
    return found


@contextmanager
def headless_chromium() -> Iterator[Any]:
    """A Playwright ``Browser`` on the system's Chromium (headless), closed afterwards."""
    from playwright.sync_api import sync_playwright

    executable = chromium_executable()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=list(LAUNCH_ARGS))
        try:
            yield browser
        finally:
            browser.close()
