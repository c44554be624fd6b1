"""The server dies under open pages and comes back on the same port and database: the
pages reconnect on their own, and nothing anyone sent is lost or shown twice."""
from __future__ import annotations

import pytest

from tests.harness.browser import chromium, open_page, own_chat_server, unique  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def test_pages_reconnect_after_a_server_restart_and_lose_nothing(own_chat_server, open_page):  # noqa: F811
    server = own_chat_server
    alice = open_page(server).register(unique("alice"), nickname="Alice")
    bob_name = unique("bob")
    bob = open_page(server).register(bob_name, nickname="Bob")
    alice.start_chat(bob_name, "Bob")
    alice.send("before the crash")
    bob.open("Alice")
    bob.wait_message("before the crash")

    server.kill()
    alice.wait_offline()
    bob.wait_offline()

    # Typed while the server is down: held as "Sending…", not dropped.
    alice.type_and_send("while the server was down")
    pending = alice.message("while the server was down")
    pending.wait_for()
    assert pending.get_attribute("data-state") == "sending"
    assert "Sending…" in pending.inner_text()
    alice.screenshot("browser_offline_sending")

    server.start()
    alice.wait_online()
    bob.wait_online()

    # The held message goes out after the reconnect and reaches Bob.
    alice.message("while the server was down").and_(alice.page.locator('[data-state="sent"]')).wait_for()
    bob.wait_message("while the server was down")
    alice.send("after the restart")
    bob.wait_message("after the restart")
    bob.send("got all three")
    alice.wait_message("got all three")

    expected = ["before the crash", "while the server was down", "after the restart", "got all three"]
    assert alice.bubbles() == expected
    assert bob.bubbles() == expected
    bob.screenshot("browser_after_restart")

    # From the server's own record (a fresh load), once each and in order.
    for person in (alice, bob):
        person.page.reload()
        person.wait_online()
        person.open("Bob" if person is alice else "Alice")
        person.wait_message("got all three")
        assert person.bubbles() == expected
