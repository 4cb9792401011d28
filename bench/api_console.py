"""The console scenarios of bench.api: the fleet overview and a devices-list page as an operator's browser asks
for them (HTML, session cookie), on the same 100,000-device data set as the API scenarios.

wrk times a request to its last byte, so the figures bound the first byte from above.
"""

from __future__ import annotations

import re

import requests

OVERVIEW, DEVICES = "console_overview", "console_devices"
SCENARIOS = (OVERVIEW, DEVICES)
BAR_MS = 300
PAGE_SIZE = 25  # the console's default page


def sign_in(base: str, email: str, password: str) -> str:
    """The Cookie header of a signed-in console session (taken by hand, so wrk can send it too)."""
    s = requests.Session()
    form = s.get(base + "/console/sign-in", timeout=30)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text).group(1)
    cookie = _cookie(form)
    resp = s.post(base + "/console/sign-in", data={"email": email, "password": password, "csrf_token": token},
                  headers={"Cookie": cookie, "Referer": base + "/console/sign-in"},  # a browser's same-origin post
                  allow_redirects=False, timeout=30)
    if resp.status_code != 303:
        raise RuntimeError(f"console sign-in: {resp.status_code} {resp.text[:300]}")
    cookie = _cookie(resp)
    # The first page stores the CSRF token in the session; later pages reuse that cookie unchanged.
    return _cookie(requests.get(base + "/console/", headers={"Cookie": cookie}, timeout=30)) or cookie


def _cookie(resp: requests.Response) -> str:
    found = re.search(r"iothub_console=([^;]*)", resp.headers.get("Set-Cookie", ""))
    return f"iothub_console={found.group(1)}" if found else ""


def paths(list_filter: dict, matching: int) -> dict[str, list[str]]:
    """The overview, and every page of the filtered devices list."""
    pages = max(1, -(-matching // PAGE_SIZE))
    qs = "&".join(f"{k}={v}" for k, v in list_filter.items())
    return {OVERVIEW: ["/console/"],
            DEVICES: [f"/console/devices?{qs}&page={p}" for p in range(1, pages + 1)]}


def check(base: str, cookie: str, scenario_paths: dict[str, list[str]], matching: int) -> dict:
    """One request per scenario before the load: an HTML 200 showing what the page is for (else the figures lie)."""
    out = {}
    for name, found in scenario_paths.items():
        resp = requests.get(base + found[-1], headers={"Cookie": cookie}, timeout=60)
        if resp.status_code != 200 or "text/html" not in resp.headers.get("Content-Type", ""):
            raise RuntimeError(f"{name}: {resp.status_code} {resp.text[:300]}")
        marker = 'id="overview-cards"' if name == OVERVIEW else f"{matching} total"
        if marker not in resp.text:
            raise RuntimeError(f"{name}: {marker!r} not in the page")
        out[name] = {"bytes": len(resp.content)}
    return out
