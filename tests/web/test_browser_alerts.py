"""The alert settings page in a real headless Chromium (issue 16 item 2):
subscribe with a webhook and an e-mail, see it listed, be told what is
missing, unsubscribe. Screenshots go to test-artifacts/screenshots."""
from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.web.browser import Tab

pytestmark = pytest.mark.slow


async def test_subscribe_and_unsubscribe_from_the_alert_settings_page(tab: Tab) -> None:
    await tab.sign_in()
    await tab.open("/profile")
    await tab.page.click("#alerts-link")
    await tab.page.wait_for_url("**/profile/alerts")
    await expect(tab.page.locator("#subscriptions")).to_contain_text("No subscriptions yet.")

    # no event chosen: the page says what is missing, nothing is stored
    await tab.page.fill("input[name=email]", "alice@example.org")
    await tab.page.click("#add-alert button[type=submit]")
    await expect(tab.page.locator("body")).to_contain_text("choose at least one event")
    assert await tab.server.store.list_alert_subscriptions("alice") == []

    await tab.open("/profile/alerts")
    for event in ("complete", "failure_spike", "stalled"):
        await tab.page.check(f"input[name=events][value={event}]")
    await tab.page.fill("input[name=webhook_url]", "https://hooks.example/frazil")
    await tab.page.fill("input[name=webhook_secret]", "a-very-secret-hmac-key")
    await tab.page.fill("input[name=email]", "alice@example.org")
    await tab.page.fill("input[name=spike_threshold]", "25")
    await tab.page.fill("input[name=stalled_hours]", "3")
    await tab.page.click("#add-alert button[type=submit]")
    await expect(tab.page.locator("#notice")).to_have_text("subscribed")
    row = tab.page.locator("#subscriptions tbody tr").first
    await expect(row).to_contain_text("complete, failure_spike, stalled")
    await expect(row).to_contain_text("https://hooks.example/frazil (signed)")
    await expect(row).to_contain_text("25 / h")
    await tab.shot("alert-settings")
    [sub] = await tab.server.store.list_alert_subscriptions("alice")
    assert (sub.events, sub.email, sub.spike_threshold, sub.stalled_hours, sub.webhook_secret) == (
        ["complete", "failure_spike", "stalled"], "alice@example.org", 25, 3.0, "a-very-secret-hmac-key")
    assert "a-very-secret-hmac-key" not in await tab.page.content()  # the secret is never shown back

    await row.locator("button", has_text="Delete").click()
    await expect(tab.page.locator("#notice")).to_have_text("unsubscribed")
    await expect(tab.page.locator("#subscriptions")).to_contain_text("No subscriptions yet.")
    assert tab.dialogs == [] and tab.csp_violations == []
