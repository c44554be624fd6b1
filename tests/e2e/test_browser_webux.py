"""Issue 11's web page fixes in headless Chromium, each at desktop (1280 px) and phone
(375 px) width: conversation URLs and the back control, a truthful connection badge, the
length limit and discarding a refused message, pushed presence dots, clickable links,
the "new messages" marker, desktop notifications, dark mode and the group panel.
Screenshots go to screenshots/webux_*.png (the path is printed)."""
from __future__ import annotations

import json
import re

import pytest

from tests.harness.browser import (  # noqa: F401 - fixtures
    ChatPage,
    _server,
    chat_server,
    chromium,
    open_page,
    own_chat_server,
    unique,
)

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

WIDTHS = pytest.mark.parametrize("width", [1280, 375], ids=["desktop", "phone"])
PHONE = 375
LIMIT = 50  # MESSAGE_MAX_CONTENT_LENGTH of this module's server


@pytest.fixture(scope="module")
def limited_server():  # noqa: ANN201
    yield from _server("webux", {"MESSAGE_MAX_CONTENT_LENGTH": str(LIMIT), "PRESENCE_PUSH_INTERVAL_SECONDS": "0.5"})


def shot(chat: ChatPage, name: str, width: int) -> None:
    path = chat.screenshot(f"webux_{name}_{width}")
    print(f"screenshot: {path}")


def person(server, open_page, name: str, width: int, **options) -> tuple[ChatPage, str]:  # noqa: ANN001
    username = unique(name.lower())
    return open_page(server, width=width, **options).register(username, nickname=name), username


def to_list(chat: ChatPage, width: int) -> None:
    """Back to the conversation list: on a phone the chat covers it."""
    if width == PHONE and chat.page.is_visible("#chat-back"):
        chat.page.click("#chat-back")
        chat.page.wait_for_selector("#conversation-list", state="visible")


def conversation_id(chat: ChatPage) -> str:
    return chat.page.evaluate("() => document.querySelector('li.conversation.active').dataset.id")


@WIDTHS
def test_each_conversation_has_a_url_and_back_works(limited_server, open_page, width):  # noqa: F811
    alice, _ = person(limited_server, open_page, "Alice", width)
    _, bob_name = person(limited_server, open_page, "Bob", width)
    _, carol_name = person(limited_server, open_page, "Carol", width)
    alice.start_chat(bob_name, "Bob")
    alice.send("hello bob")
    bob_id = conversation_id(alice)
    assert alice.page.url.endswith(f"/#/c/{bob_id}")
    to_list(alice, width)
    alice.start_chat(carol_name, "Carol")
    carol_id = conversation_id(alice)
    assert alice.page.url.endswith(f"/#/c/{carol_id}")
    back_visible = alice.page.is_visible("#chat-back")
    assert back_visible is (width == PHONE)  # the back control is a phone-width control
    shot(alice, "chat_with_back_control", width)

    # Browser Back leaves the chat for the list, not the app.
    alice.page.go_back()
    alice.page.wait_for_function("() => location.hash === '#/' || location.hash === ''")
    alice.page.wait_for_selector("#chat-placeholder:not([hidden])" if width != PHONE else "#chat-pane[hidden]", state="attached")
    assert alice.page.is_visible("#conversation-list")
    assert alice.page.url.startswith(limited_server.url)
    shot(alice, "back_to_list", width)

    # A link (and a reload) opens that conversation directly.
    alice.page.goto(f"{limited_server.url}/#/c/{bob_id}")
    alice.page.wait_for_selector("#chat-title:text-is('Bob')")
    alice.wait_message("hello bob")
    alice.page.reload()
    alice.page.wait_for_selector("#chat-title:text-is('Bob')")
    alice.wait_message("hello bob")
    if width == PHONE:
        assert not alice.page.is_visible("#conversation-list")
        alice.page.click("#chat-back")
        alice.page.wait_for_selector("#conversation-list", state="visible")
        assert alice.page.evaluate("() => location.hash") == "#/"


def test_connection_badge_tells_the_truth(own_chat_server, open_page):  # noqa: F811
    for width in (1280, PHONE):
        chat, _ = person(own_chat_server, open_page, "Dora", width)
        assert chat.page.inner_text("#conn-status") == "Online"
    pages = [chat]
    own_chat_server.stop()
    chat.wait_offline()
    badge = chat.page.locator("#conn-status")
    badge.filter(has_text=re.compile(r"^Offline — retrying in \d+ s$")).wait_for()
    shot(chat, "badge_offline_countdown", PHONE)
    # While the server is down the badge never claims online: it cycles offline/connecting.
    states = set()
    for _ in range(12):
        states.add(badge.get_attribute("data-state"))
        chat.page.wait_for_timeout(250)
    assert "online" not in states and "offline" in states
    own_chat_server.start()
    for page in pages:
        page.wait_online()
    assert badge.inner_text() == "Online"


@WIDTHS
def test_length_counter_blocks_the_send_and_a_refused_message_can_be_discarded(limited_server, open_page, width):  # noqa: F811
    alice, _ = person(limited_server, open_page, "Alice", width)
    _, bob_name = person(limited_server, open_page, "Bob", width)
    alice.start_chat(bob_name, "Bob")
    page = alice.page
    assert page.is_hidden("#composer-count")  # far from the limit: no counter
    page.fill("#composer-input", "x" * 46)
    assert page.inner_text("#composer-count") == f"46 / {LIMIT}"
    page.fill("#composer-input", "y" * 60)
    assert page.inner_text("#composer-count") == f"10 characters too long (max {LIMIT})"
    assert page.is_disabled("#composer-send")
    page.press("#composer-input", "Enter")
    assert alice.bubbles() == []  # blocked: nothing sent, the text stays for editing
    assert page.input_value("#composer-input") == "y" * 60
    shot(alice, "over_length_counter", width)

    # A message the server refuses (queued before the limit was lowered, say) shows the
    # server's reason with its details, offers no Retry that cannot work, and Discard.
    user_id = page.evaluate("() => JSON.parse(localStorage.getItem('gochat.auth')).user.id")
    conv_id = conversation_id(alice)
    outbox = [{"client_msg_id": "too-long-1", "conversation_id": conv_id, "content": "z" * 80,
               "created_at": "2026-01-01T10:00:00Z"}]
    page.evaluate("([k, v]) => localStorage.setItem(k, v)", [f"gochat.outbox.{user_id}", json.dumps(outbox)])
    page.reload()
    page.wait_for_selector("#chat-title:text-is('Bob')")
    failed = page.locator('#message-list li.message[data-state="failed"]')
    failed.wait_for()
    error = failed.locator(".send-error").inner_text()
    assert "invalid send-message" in error and f"content: At most {LIMIT} characters." in error
    assert failed.locator("button", has_text="Retry").count() == 0
    shot(alice, "refused_message_with_reason", width)
    failed.locator("button", has_text="Discard").click()
    failed.wait_for(state="detached")
    assert page.evaluate("(k) => localStorage.getItem(k)", f"gochat.outbox.{user_id}") is None


@WIDTHS
def test_presence_dots_are_pushed(limited_server, open_page, width):  # noqa: F811
    alice, _ = person(limited_server, open_page, "Alice", width)
    bob, bob_name = person(limited_server, open_page, "Bob", width)
    alice.start_chat(bob_name, "Bob")
    to_list(alice, width)
    dot = alice.conversation("Bob").locator(".presence-dot")
    alice.page.wait_for_function("() => document.querySelector('li.conversation .presence-dot')")
    assert dot.get_attribute("data-online") == "true"

    # Bob closes his tab: Alice's dot goes grey without any reload or poll (the list
    # was polled every 25 s before; the push arrives within about a second).
    bob.page.context.close()
    alice.page.locator("li.conversation .presence-dot[data-online=false]").wait_for(timeout=8000)
    shot(alice, "presence_offline", width)
    alice.open("Bob")
    assert "last seen" in alice.page.inner_text("#chat-subtitle")

    # He comes back on another device: green again, pushed.
    again = open_page(limited_server, width=width)
    again.page.goto(limited_server.url + "/")
    again.page.fill("#auth-username", bob_name)
    again.page.fill("#auth-password", "correct-horse-9")
    again.page.click("#auth-submit")
    again.wait_online()
    alice.page.locator("#chat-subtitle", has_text="online").wait_for(timeout=8000)
    to_list(alice, width)
    alice.page.locator("li.conversation .presence-dot[data-online=true]").wait_for(timeout=8000)
    shot(alice, "presence_online", width)


NOTIFICATION_SPY = """
(() => {
  window.__notes = [];
  window.__hidden = false;
  Object.defineProperty(document, "visibilityState", { get: () => (window.__hidden ? "hidden" : "visible") });
  Object.defineProperty(document, "hidden", { get: () => window.__hidden });
  class Spy { constructor(title, options) { window.__notes.push({ title, body: options && options.body }); } close() {} }
  Spy.permission = "granted";
  Spy.requestPermission = async () => "granted";
  window.Notification = Spy;
})();
"""


@WIDTHS
def test_links_unread_marker_and_notifications(limited_server, open_page, width):  # noqa: F811
    alice, _ = person(limited_server, open_page, "Alice", width)
    _, bob_name = person(limited_server, open_page, "Bob", width)
    carol_page = open_page(limited_server, width=width)
    carol_page.page.add_init_script(NOTIFICATION_SPY)
    carol_name = unique("carol")
    carol = carol_page.register(carol_name, nickname="Carol")
    alice.start_chat(carol_name, "Carol")
    alice.send("first one, read")
    carol.conversation("Alice").wait_for()
    carol.open("Alice")
    carol.wait_message("first one, read")
    to_list(carol, width)
    carol.start_chat(bob_name, "Bob")  # Carol is elsewhere while Alice writes on

    link_text = "see https://example.com/a?b=1, and <b>not bold</b>"
    alice.send(link_text)
    alice.send("second unread")
    to_list(carol, width)
    carol.wait_badge("Alice", "2")
    carol.open("Alice")
    carol.wait_message(link_text)
    link = carol.message(link_text).locator(".bubble a")
    assert link.get_attribute("href") == "https://example.com/a?b=1"
    assert link.get_attribute("target") == "_blank" and "noopener" in link.get_attribute("rel")
    assert link.inner_text() == "https://example.com/a?b=1"  # the comma is not part of it
    assert carol.message(link_text).locator(".bubble b").count() == 0  # text, never markup
    # The marker sits right before the first unread message.
    items = carol.page.locator("#message-list > li").all_inner_texts()
    marker = items.index("New messages")
    assert "first one, read" in items[marker - 1] and link_text in items[marker + 1]
    shot(carol, "link_and_new_messages_marker", width)

    # The tab goes to the background: Alice's next message is a desktop notification.
    carol.page.evaluate("() => { window.__hidden = true; document.dispatchEvent(new Event('visibilitychange')); }")
    alice.send("are you there?")
    carol.page.wait_for_function("() => window.__notes.length > 0")
    notes = carol.page.evaluate("() => window.__notes")
    assert notes == [{"title": "Alice", "body": "are you there?"}]
    # Visible again: own messages and visible-tab messages make no notification.
    carol.page.evaluate("() => { window.__hidden = false; }")
    alice.send("now you see me")
    carol.wait_message("now you see me")
    assert carol.page.evaluate("() => window.__notes.length") == 1


@WIDTHS
def test_dark_mode_follows_the_system(limited_server, open_page, width):  # noqa: F811
    alice, _ = person(limited_server, open_page, "Alice", width, color_scheme="dark")
    _, bob_name = person(limited_server, open_page, "Bob", width)
    alice.start_chat(bob_name, "Bob")
    alice.send("dark and readable https://example.org")
    background = alice.page.evaluate("() => getComputedStyle(document.body).backgroundColor")
    text = alice.page.evaluate("() => getComputedStyle(document.body).color")
    assert background == "rgb(18, 21, 28)" and text == "rgb(230, 233, 240)"
    field = alice.page.evaluate("() => getComputedStyle(document.getElementById('composer-input')).backgroundColor")
    assert field == "rgb(21, 25, 34)"  # no white input left in the dark
    shot(alice, "dark_mode", width)


@WIDTHS
def test_group_panel_members_roles_remove_add_and_leave(limited_server, open_page, width):  # noqa: F811
    alice, _ = person(limited_server, open_page, "Alice", width)
    bob, _ = person(limited_server, open_page, "Bob", width)
    carol, carol_name = person(limited_server, open_page, "Carol", width)
    group_id = alice.create_group("Book club")
    bob.join_group(group_id, "Book club")
    to_list(carol, width)
    carol.join_group(group_id, "Book club")

    alice.page.click("#group-info")
    members = alice.page.locator("#group-members li.group-member")
    members.nth(2).wait_for()
    assert members.count() == 3
    assert "you are owner" in alice.page.inner_text("#group-panel-meta")
    # Carol leaves the page and comes back (her first socket again): pushed to Alice, who
    # shares the group with her, and shown in the panel.
    carol.page.goto("about:blank")
    alice.page.wait_for_timeout(1500)
    carol.page.goto(limited_server.url + "/")
    carol.wait_online()
    alice.page.locator("#group-members li.group-member", has_text="Carol").locator(".presence-dot[data-online=true]").wait_for(timeout=8000)

    row = lambda name: alice.page.locator("#group-members li.group-member", has_text=name)  # noqa: E731
    row("Bob").locator("button", has_text="Make admin").click()
    row("Bob").locator(".muted", has_text="admin").wait_for()
    alice.page.once("dialog", lambda dialog: dialog.accept())
    row("Carol").locator("button", has_text="Remove").click()
    row("Carol").wait_for(state="detached")
    alice.page.fill("#group-add-input", carol_name)
    alice.page.click("#group-add button[type=submit]")
    row("Carol").wait_for()
    shot(alice, "group_panel_owner", width)

    # Bob, now an admin, sees his role; then he leaves and the group is gone from his list.
    bob.page.click("#group-info")
    bob.page.locator("#group-panel-meta", has_text="you are admin").wait_for()
    shot(bob, "group_panel_admin", width)
    bob.page.once("dialog", lambda dialog: dialog.accept())
    bob.page.click("#group-leave")
    bob.conversation("Book club").wait_for(state="detached")
    bob.page.locator("#toast", has_text="You left").wait_for()
    alice.page.click("#group-panel-close")
    alice.page.click("#group-info")
    alice.page.locator("#group-panel-meta", has_text="2 members").wait_for()
