"""The web chat page in headless Chromium against a real embedded-default server.

People sign up through the page, chat in separate browser contexts (separate
localStorage, separate sockets), and every assertion is about what is on their screen.
"""
from __future__ import annotations

import json
import re
import urllib.request
import uuid

import pytest

from tests.harness.browser import ChatPage, chat_server, chromium, open_page, unique  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.e2e]


def _rest(server, method: str, path: str, token: str, body: dict | None = None) -> dict:  # noqa: ANN001
    """A REST call as another client of the same account (a phone, say)."""
    request = urllib.request.Request(
        f"{server.url}/api/v1/{path}",
        method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")


def _access_token(chat: ChatPage) -> str:
    return chat.page.evaluate("() => JSON.parse(localStorage.getItem('gochat.auth')).access")


def _pair(chat_server, open_page):  # noqa: ANN001, ANN202
    alice_name, bob_name = unique("alice"), unique("bob")
    alice = open_page(chat_server).register(alice_name, nickname="Alice")
    bob = open_page(chat_server).register(bob_name, nickname="Bob")
    return alice, bob, alice_name, bob_name


def test_two_people_chat_both_ways(chat_server, open_page):  # noqa: F811
    alice, bob, _, bob_name = _pair(chat_server, open_page)

    alice.start_chat(bob_name, "Bob")
    alice.send("Hi Bob, lunch at noon?")

    # Bob never opened this chat: it appears in his list, live, with the message preview.
    bob.conversation("Alice").locator(".conversation-preview", has_text="Hi Bob, lunch at noon?").wait_for()
    bob.open("Alice")
    bob.wait_message("Hi Bob, lunch at noon?")
    bob.send("Sure, see you there")

    alice.wait_message("Sure, see you there")
    assert alice.bubbles() == ["Hi Bob, lunch at noon?", "Sure, see you there"]
    assert bob.bubbles() == ["Hi Bob, lunch at noon?", "Sure, see you there"]
    # Own messages sit on the right and show their state; the peer's do not.
    assert alice.message("Hi Bob, lunch at noon?").get_attribute("class") == "message mine"
    # Bob opened the chat, so it is Sent or, once his receipt is in, Read.
    assert re.search(r"\b(Sent|Read)\b", alice.message("Hi Bob, lunch at noon?").inner_text())
    assert alice.message("Sure, see you there").get_attribute("class") == "message"

    # Search finds the message and marks the matched word.
    alice.page.fill("#search-input", "lunch")
    alice.page.press("#search-input", "Enter")
    hit = alice.page.locator("#search-list .search-hit").first
    hit.locator("mark", has_text="lunch").wait_for()
    assert "Hi Bob, lunch at noon?" in hit.inner_text()
    alice.screenshot("browser_two_people_chat")


def test_a_message_that_skipped_the_socket_is_pulled_on_the_next_seq(chat_server, open_page):  # noqa: F811
    alice, bob, _, bob_name = _pair(chat_server, open_page)
    alice.start_chat(bob_name, "Bob")
    alice.send("first")
    bob.open("Alice")
    bob.wait_message("first")

    # Another client of Alice's sends over REST; then the page sends over the socket. If
    # Bob's socket never got the REST one, the seq jump of the next one makes his page
    # pull it: either way he ends up with all three, in order, once each.
    conversation_id = alice.page.locator("li.conversation.active").get_attribute("data-id")
    _rest(chat_server, "POST", "messages/send", _access_token(alice), {
        "conversation_id": conversation_id, "client_msg_id": uuid.uuid4().hex, "content": "from my phone",
    })
    alice.send("third")
    bob.wait_message("third")
    bob.wait_message("from my phone")
    assert bob.bubbles() == ["first", "from my phone", "third"]
    bob.screenshot("browser_gap_pull")


def test_messages_that_arrive_while_the_history_loads_stay_on_screen(chat_server, open_page):  # noqa: F811
    """The race behind the flaky sends of the browser tests, made certain: the first history
    page of a chat is answered before anything is in it, but reaches the page only after the
    acknowledgement of a message typed at once (and a peer's message) came over the socket.
    Both must stay on the screen; the page used to drop them, so the sent bubble vanished."""
    alice, bob, _, bob_name = _pair(chat_server, open_page)
    held = []

    def hold_first_history(route) -> None:  # noqa: ANN001 - playwright Route
        if held:
            route.continue_()
            return
        held.append((route, route.fetch()))  # the server answers now: an empty chat

    alice.page.route("**/api/v1/messages/history?*", hold_first_history)
    alice.start_chat(bob_name, "Bob")
    for _ in range(200):
        if held:
            break
        alice.page.wait_for_timeout(50)
    assert held, "the chat asked for no history"
    assert alice.page.inner_text("#history-status") == "Loading…"

    alice.send("typed at once")  # acknowledged over the socket while the history is held
    conversation_id = alice.page.locator("li.conversation.active").get_attribute("data-id")
    _rest(chat_server, "POST", "messages/send", _access_token(bob), {
        "conversation_id": conversation_id, "client_msg_id": uuid.uuid4().hex, "content": "and Bob answers",
    })
    alice.conversation("Bob").locator(".conversation-preview", has_text="and Bob answers").wait_for()

    route, response = held[0]
    route.fulfill(response=response)  # the stale, empty page arrives last
    alice.page.wait_for_function("() => !/Loading/.test(document.getElementById('history-status').textContent)")
    assert alice.bubbles() == ["typed at once", "and Bob answers"]
    assert alice.message("typed at once").get_attribute("data-state") == "sent"


def test_reload_keeps_the_session_and_the_history_pages_up_on_scroll(chat_server, open_page):  # noqa: F811
    alice, bob, _, bob_name = _pair(chat_server, open_page)
    alice.start_chat(bob_name, "Bob")
    alice.send("message 1")
    conversation_id = alice.page.locator("li.conversation.active").get_attribute("data-id")
    token = _access_token(alice)
    # More than one page of history (the page loads 30 at a time).
    for n in range(2, 46):
        _rest(chat_server, "POST", "messages/send", token, {
            "conversation_id": conversation_id, "client_msg_id": f"seed-{n}", "content": f"message {n}",
        })

    alice.page.reload()
    alice.wait_online()  # still signed in: the tokens are in localStorage
    alice.open("Bob")
    alice.wait_message("message 45")
    assert not alice.message("message 1").count()  # not loaded yet: older than one page

    # Scrolling up loads earlier pages until the very first message.
    for _ in range(10):
        if alice.message("message 1").count():
            break
        alice.page.eval_on_selector("#messages", "box => box.scrollTo(0, 0)")
        alice.page.wait_for_timeout(300)
    alice.wait_message("message 1")
    assert alice.bubbles() == [f"message {n}" for n in range(1, 46)]
    assert alice.page.inner_text("#history-status") == "Beginning of the conversation"
    alice.screenshot("browser_history_after_reload")


def test_unread_badge_rises_and_clears(chat_server, open_page):  # noqa: F811
    alice, bob, alice_name, bob_name = _pair(chat_server, open_page)
    carol_name = unique("carol")
    open_page(chat_server).register(carol_name, nickname="Carol")
    # Bob is busy in another chat while Alice writes.
    bob.start_chat(carol_name, "Carol")
    alice.start_chat(bob_name, "Bob")
    alice.send("one")
    bob.wait_badge("Alice", "1")
    alice.send("two")
    alice.send("three")
    bob.wait_badge("Alice", "3")
    assert bob.page.title() == "(3) GoChat"
    bob.screenshot("browser_unread_badge")

    bob.open("Alice")
    bob.wait_message("three")
    bob.conversation("Alice").locator(".badge").wait_for(state="detached")
    assert bob.page.title() == "GoChat"

    # Read on the server, not just on this page: a reload shows no badge either.
    bob.page.reload()
    bob.wait_online()
    bob.conversation("Alice").wait_for()
    assert bob.badge_text("Alice") is None


def test_group_of_three(chat_server, open_page):  # noqa: F811
    alice = open_page(chat_server).register(unique("alice"), nickname="Alice")
    bob = open_page(chat_server).register(unique("bob"), nickname="Bob")
    carol = open_page(chat_server).register(unique("carol"), nickname="Carol")

    group_id = alice.create_group("Weekend trip")
    bob.join_group(group_id, "Weekend trip")
    carol.join_group(group_id, "Weekend trip")

    alice.send("Who is driving?")
    bob.wait_message("Who is driving?")
    carol.wait_message("Who is driving?")
    carol.send("I can drive")
    bob.send("I bring snacks")

    for person in (alice, bob, carol):
        person.wait_message("I bring snacks")
        person.wait_message("I can drive")
        assert sorted(person.bubbles()) == sorted(["Who is driving?", "I can drive", "I bring snacks"])
    # In a group, others' messages carry the sender's name.
    assert "Carol" in alice.message("I can drive").inner_text()
    assert "Alice" in bob.message("Who is driving?").inner_text()
    alice.screenshot("browser_group_of_three")


def test_bad_sign_in_and_unknown_user_get_clear_errors(chat_server, open_page):  # noqa: F811
    chat = open_page(chat_server)
    chat.page.goto(chat_server.url + "/")
    chat.page.fill("#auth-username", unique("nobody"))
    chat.page.fill("#auth-password", "wrong-password-1")
    chat.page.click("#auth-submit")
    chat.page.wait_for_selector("#auth-error:not([hidden])")
    assert chat.page.inner_text("#auth-error") == "Wrong username or password."
    chat.screenshot("browser_sign_in_error")

    chat.register(unique("dave"), nickname="Dave")
    chat.page.click("[data-panel=panel-chat]")
    chat.page.fill("#chat-username", "no-such-user-xyz")
    chat.page.click("#panel-chat button[type=submit]")
    chat.page.wait_for_selector("#sidebar-error:not([hidden])")
    assert chat.page.inner_text("#sidebar-error") == "No user named “no-such-user-xyz”."
