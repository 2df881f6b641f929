"""Finding the browser for the page's tests: install with apt when root, otherwise fail with the reason."""

from __future__ import annotations

import subprocess

import pytest

from pricing.ui import browser


def test_an_installed_chromium_is_used_without_apt(monkeypatch) -> None:
    monkeypatch.setattr(browser, "find_chromium", lambda: "/usr/lib/chromium/chromium")
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("apt ran although Chromium is installed"))
    assert browser.chromium_executable() == "/usr/lib/chromium/chromium"


def test_without_chromium_and_root_it_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setattr(browser, "find_chromium", lambda: None)
    monkeypatch.setattr(browser.os, "geteuid", lambda: 1000)
    with pytest.raises(browser.BrowserUnavailableError, match="apt-get install -y chromium fonts-liberation"):
        browser.chromium_executable()


def test_as_root_it_installs_debians_package_and_reports_a_failed_install(monkeypatch) -> None:
    commands = []

    def apt(command, **kwargs):
        commands.append(command)
        failed = command[1] == "install"
        return subprocess.CompletedProcess(command, 100 if failed else 0, "", "E: Unable to locate package")

    monkeypatch.setattr(browser, "find_chromium", lambda: None)
    monkeypatch.setattr(browser.os, "geteuid", lambda: 0)
    monkeypatch.setattr(subprocess, "run", apt)
    with pytest.raises(browser.BrowserUnavailableError, match=r"exited with 100:\nE: Unable to locate package"):
        browser.chromium_executable()
    assert [c[:2] for c in commands] == [["apt-get", "update"], ["apt-get", "install"]]
    assert commands[1][-2:] == ["chromium", "fonts-liberation"]


def test_as_root_a_successful_install_yields_the_binary(monkeypatch) -> None:
    found = iter([None, "/usr/lib/chromium/chromium"])
    monkeypatch.setattr(browser, "find_chromium", lambda: next(found))
    monkeypatch.setattr(browser.os, "geteuid", lambda: 0)
    monkeypatch.setattr(subprocess, "run", lambda command, **k: subprocess.CompletedProcess(command, 0, "", ""))
    assert browser.chromium_executable() == "/usr/lib/chromium/chromium"
