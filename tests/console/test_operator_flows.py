"""An operator in Chromium: sign in, find the simulated meter, live values, a chart, an alarm from a rule
acknowledged and resolved, a command reaching accepted, an OTA rollout to success, a dead letter replayed."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.console.conftest import find_device, shoot
from tests.device_manager.ops_data import insert_dead_letter

pytestmark = pytest.mark.slow
LIVE_S = 30_000  # ms: the device connects, reports, and the collector stores it


def _open_device(page, device_id: str):
    link = find_device(page, device_id)
    expect(link).to_be_visible()
    link.click()
    expect(page.locator("[data-connection]")).to_have_text("online", timeout=LIVE_S)


def test_overview_shows_the_fleet(sign_in, stack):
    page = sign_in("operator")
    expect(page.locator("#overview-cards [data-count=online]")).to_have_text("1", timeout=LIVE_S)
    shoot(page, "overview")


def test_device_live_values_change_and_chart_draws(sign_in, stack):
    page = sign_in("operator")
    _open_device(page, stack["device_id"])
    value = page.locator("tr[data-metric=voltage_dc] [data-value]")
    expect(value).to_be_visible(timeout=LIVE_S)
    first = value.inner_text()
    expect(value).not_to_have_text(first, timeout=LIVE_S)  # refreshed by polling, no reload
    page.select_option("select[name=metric]", "voltage_dc")
    page.select_option("select[name=range]", "1d")
    page.click("[data-chart-form] button")
    expect(page.locator("[data-chart-plot]")).to_have_attribute("data-points", re.compile(r"^[1-9]\d*$"))
    expect(page.locator("[data-chart-plot] canvas")).to_be_visible()
    shoot(page, "device")


def test_alarm_from_a_rule_is_acknowledged_and_resolved(sign_in, stack):
    page = sign_in("operator")
    page.click("nav >> text=Rules")
    shoot(page, "rules")
    page.click("text=New threshold rule")
    name = f"console high voltage {stack['device_id']}"
    page.fill("input[name=name]", name)
    page.select_option("select[name=scope]", "device")
    page.fill("input[name=device_id]", stack["device_id"])
    page.fill("input[name=metric]", "voltage_dc")
    page.select_option("select[name=operator]", "gt")
    page.fill("input[name=threshold]", "1")
    page.select_option("select[name=severity]", "critical")
    page.click("button:has-text('Create rule')")
    page.wait_for_url(re.compile(r"/console/rules/[0-9a-f-]{36}$"))
    page.click("button:has-text('Test on last hour')")
    expect(page.locator("#rule-test")).to_contain_text(stack["device_id"])
    page.click("nav >> text=Alarms")
    row = page.locator("#events-table tr", has_text=name).first
    expect(row).to_be_visible(timeout=LIVE_S)
    expect(row.locator("[data-status]")).to_have_text("open")
    event_id = row.get_attribute("data-event")
    shoot(page, "alarms")
    row.locator("button:has-text('Acknowledge')").click()
    same = page.locator(f"tr[data-event='{event_id}']")
    expect(same.locator("[data-status]")).to_have_text("acknowledged")
    expect(page.locator("#toasts")).to_contain_text("Event acknowledged")
    same.locator("input[name=comment]").fill("checked on site")
    same.locator("button:has-text('Resolve')").click()
    expect(page.locator("#toasts")).to_contain_text("Event resolved")
    page.goto(page.url.split("/console/")[0] + "/console/events?status=resolved")
    expect(page.locator(f"tr[data-event='{event_id}'] [data-status]")).to_have_text("resolved")


def test_command_reaches_accepted(sign_in, stack):
    page = sign_in("operator")
    _open_device(page, stack["device_id"])
    page.select_option("select[name=cmd]", "request_status")
    page.click("button:has-text('Send command')")
    expect(page.locator("#toasts")).to_contain_text("request_status is")
    newest = page.locator("#device-commands tbody tr").first
    expect(newest).to_contain_text("request_status")
    expect(newest.locator("[data-status]")).to_have_text("accepted", timeout=LIVE_S)
    shoot(page, "commands")


def test_ota_rollout_finishes(sign_in, stack):
    page = sign_in("operator")
    _open_device(page, stack["device_id"])
    device_uuid = page.url.rsplit("/", 1)[1]
    page.click("nav >> text=OTA")
    page.locator("details:has(summary:has-text('Start a rollout'))").evaluate("d => d.open = true")
    page.fill("input[name=fw_version]", "2.0.0")
    page.fill("input[name=url]", "http://firmware.local/pm-2.0.0.bin")
    page.fill("input[name=sha256]", "a" * 64)
    page.fill("input[name=size_bytes]", "123456")
    page.fill("textarea[name=device_ids]", device_uuid)
    page.click("button:has-text('Start rollout')")
    page.wait_for_url(re.compile(r"/console/ota/[0-9a-f-]{36}$"))
    expect(page.locator("[data-rollout-state]")).to_have_attribute("data-rollout-state", "complete", timeout=90_000)
    expect(page.locator(f"tr[data-device='{stack['device_id']}'] [data-state]")).to_have_text("success")
    shoot(page, "ota")


def test_dead_letter_is_replayed_and_admin_pages_open(sign_in, stack, console_app, people):
    dl_id = insert_dead_letter(console_app.extensions["device_manager"].db, body=b'{"parked": "by the test"}')
    page = sign_in("admin")
    page.click("nav >> text=Dead letters")
    row = page.locator(f"tr[data-dead-letter='{dl_id}']")
    expect(row.locator("[data-status]")).to_have_text("parked")
    shoot(page, "dead-letters")
    row.locator("button:has-text('Replay')").click()
    expect(row.locator("[data-status]")).to_have_text("replayed")
    expect(page.locator("#toasts")).to_contain_text("Dead letter replayed")
    page.click("nav >> text=Notifications")
    expect(page.locator("h2", has_text="Subscriptions")).to_be_visible()
    shoot(page, "notifications")
    page.click("nav >> text=Users")
    expect(page.locator(f"tr[data-user='{people['admin'][0]}']")).to_be_visible()
    shoot(page, "users")


def test_a_refused_action_says_why_and_the_list_works_on_a_tablet(sign_in, stack):
    page = sign_in("operator")
    page.set_viewport_size({"width": 820, "height": 1180})  # a tablet held upright
    page.click("nav >> text=Devices")
    page.click("button:has-text('Send to selected')")
    expect(page.locator("#toasts .toast.error")).to_contain_text("Select at least one device first")
    page.locator("#devices-table input[name=device_ids]").first.check()
    expect(page.locator("[data-selected]")).to_have_text("1")
    page.fill("input[name=params]", "not json")
    page.click("button:has-text('Send to selected')")
    expect(page.locator("#toasts .toast.error").last).to_contain_text("params must be a JSON object")
    shoot(page, "devices-tablet")
