"""Issue 10 on the web page, in headless Chromium against a real embedded-default server.

Read receipts ("Read", "Read by N"), typing, the keyboard message menu (edit, reply,
react, recall, delete for me), attachments by button and by drag and drop, mention
autocomplete with its badge, and the group member panel. Each person is a separate
browser context (own localStorage, own socket); every assertion is about the screen.
Screenshots at 1280 px and 375 px go to screenshots/.
"""
from __future__ import annotations

import io
import re

import pytest

from tests.harness.browser import ChatPage, _server, chat_server, chromium, unique  # noqa: F401 - fixtures

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}


@pytest.fixture
def person(chromium):  # noqa: ANN001, ANN201, F811
    """person(server, width=1280) -> a ChatPage in its own browser context."""
    contexts = []

    def factory(server, viewport=None, **options) -> ChatPage:  # noqa: ANN001, ANN003
        context = chromium.new_context(viewport=viewport or DESKTOP, **options)
        contexts.append(context)
        return ChatPage(context.new_page(), server)

    yield factory
    for context in contexts:
        context.close()


def _pair(server, person, viewport=None, **options):  # noqa: ANN001, ANN003, ANN202
    alice_name, bob_name = unique("alice"), unique("bob")
    alice = person(server, viewport, **options).register(alice_name, nickname="Alice")
    bob = person(server, viewport, **options).register(bob_name, nickname="Bob")
    alice.start_chat(bob_name, "Bob")
    return alice, bob, alice_name, bob_name


UPLOAD_LIMIT = 4000  # UPLOAD_MAX_BYTES of the small-uploads server


@pytest.fixture(scope="module")
def small_uploads_server():  # noqa: ANN201
    yield from _server("lifecycle-uploads", {"UPLOAD_MAX_BYTES": str(UPLOAD_LIMIT)})


def _item(chat: ChatPage, text: str):  # noqa: ANN202
    """The message whose text (without decorations) starts with text."""
    return chat.page.locator("#message-list li.message").filter(
        has=chat.page.locator(".bubble", has_text=re.compile(rf"^{re.escape(text)}"))
    )


def _menu(chat: ChatPage, text: str, action: str) -> None:
    """Open the message's menu from the keyboard and pick action with the arrow keys."""
    item = _item(chat, text)
    item.focus()
    chat.page.keyboard.press("Enter")
    menu = chat.page.locator(".msg-menu")
    menu.wait_for()
    labels = menu.locator(".popup-item").evaluate_all("(nodes) => nodes.map((n) => n.dataset.action)")
    assert action in labels, labels
    for _ in range(labels.index(action)):
        chat.page.keyboard.press("ArrowDown")
    focused = chat.page.evaluate("() => document.activeElement.dataset.action")
    assert focused == action
    chat.page.keyboard.press("Enter")


def _png(width: int = 300, height: int = 200) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (59, 108, 246))
    draw = ImageDraw.Draw(image)
    draw.ellipse((40, 30, width - 40, height - 30), fill=(255, 216, 77))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# --- read receipts and typing --------------------------------------------------------------


def test_one_to_one_read_receipt_and_typing(chat_server, person):  # noqa: F811
    alice, bob, _, _ = _pair(chat_server, person)
    alice.send("Are you there?")
    alice.send("Lunch at noon?")
    # Bob has not opened the chat: nothing is read.
    assert alice.page.locator("#message-list li.message[data-read=true]").count() == 0

    bob.open("Alice")
    bob.wait_message("Lunch at noon?")
    # The receipt frame: "Read" under the newest message Bob read, and only there.
    read = alice.page.locator("#message-list li.message[data-read=true]")
    read.wait_for()
    assert read.count() == 1
    assert read.locator(".bubble").inner_text() == "Lunch at noon?"
    assert "Read" in read.inner_text()

    # Bob types: Alice sees it within moments, and it goes away by itself after ~5 s.
    bob.page.click("#composer-input")
    bob.page.keyboard.type("Sure, wh", delay=40)
    indicator = alice.page.locator("#typing-indicator")
    indicator.wait_for(state="visible", timeout=5000)
    assert indicator.inner_text() == "Bob is typing…"
    alice.screenshot("lifecycle-typing-read-1280")
    indicator.wait_for(state="hidden", timeout=9000)

    # A message from the typist ends the indicator at once.
    bob.page.keyboard.type("ere?", delay=40)
    indicator.wait_for(state="visible", timeout=5000)
    bob.page.keyboard.press("Enter")
    alice.wait_message("Sure, where?")
    indicator.wait_for(state="hidden", timeout=2000)

    # After a reload the read state comes from the conversation list (peer_last_read_seq).
    alice.page.reload()
    alice.wait_online()
    alice.open("Bob")
    alice.page.locator("#message-list li.message[data-read=true]").wait_for()


def test_no_read_receipt_from_a_peer_who_turned_them_off(chat_server, person):  # noqa: F811
    alice, bob, _, _ = _pair(chat_server, person)
    # Bob turns receipts off (users/profile), as his settings would.
    status = bob.page.evaluate(
        """() => fetch('/api/v1/users/profile', {method: 'PATCH', headers: {'Content-Type': 'application/json',
             Authorization: 'Bearer ' + JSON.parse(localStorage.getItem('gochat.auth')).access},
             body: JSON.stringify({send_read_receipts: false})}).then((r) => r.status)"""
    )
    assert status == 200
    alice.send("read this quietly")
    bob.open("Alice")
    bob.wait_message("read this quietly")
    bob.send("done")  # Alice knows Bob has been here...
    alice.wait_message("done")
    alice.page.wait_for_timeout(1000)
    # ...but her message never says Read, live or after a reload.
    assert alice.page.locator("#message-list li.message[data-read=true]").count() == 0
    assert "Sent" in _item(alice, "read this quietly").inner_text()
    alice.page.reload()
    alice.wait_online()
    alice.open("Bob")
    alice.wait_message("done")
    assert alice.page.locator("#message-list li.message[data-read=true]").count() == 0


def test_group_read_by_count(chat_server, person):  # noqa: F811
    owner_name, b_name, c_name = unique("olga"), unique("ben"), unique("cleo")
    olga = person(chat_server).register(owner_name, nickname="Olga")
    ben = person(chat_server).register(b_name, nickname="Ben")
    cleo = person(chat_server).register(c_name, nickname="Cleo")
    team = unique("Team ")
    group_id = olga.create_group(team)
    ben.join_group(group_id, team)
    cleo.join_group(group_id, team)
    # Both look elsewhere: Olga's message is unread for them.
    ben.start_chat(owner_name, "Olga")
    cleo.start_chat(owner_name, "Olga")

    olga.send("Standup in 5")
    message = olga.message("Standup in 5")
    assert message.locator(".receipt").count() == 0

    ben.open(team)
    ben.wait_message("Standup in 5")
    message.locator(".receipt", has_text="Read by 1").wait_for()
    cleo.open(team)
    cleo.wait_message("Standup in 5")
    message.locator(".receipt", has_text="Read by 2").wait_for()
    olga.screenshot("lifecycle-group-read-by-1280")

    # From history after a reload (read_count and the receipts endpoint).
    olga.page.reload()
    olga.wait_online()
    olga.open(team)
    olga.message("Standup in 5").locator(".receipt", has_text="Read by 2").wait_for()


# --- the message menu: edit, reply, react, recall, delete for me ------------------------------


def test_message_menu_by_keyboard(chat_server, person):  # noqa: F811
    alice, bob, _, _ = _pair(chat_server, person)
    alice.send("first draft")
    bob.open("Alice")
    bob.wait_message("first draft")

    # Escape closes the menu and gives the focus back to the message.
    _item(alice, "first draft").focus()
    alice.page.keyboard.press("Enter")
    alice.page.locator(".msg-menu").wait_for()
    actions = alice.page.locator(".msg-menu .popup-item").evaluate_all("(n) => n.map((x) => x.dataset.action)")
    assert actions == ["reply", "react", "edit", "recall", "hide"]
    alice.screenshot("lifecycle-menu-1280")
    alice.page.keyboard.press("Escape")
    alice.page.locator(".msg-menu").wait_for(state="detached")
    assert alice.page.evaluate("() => document.activeElement.matches('li.message')")
    # Bob's menu on Alice's message has no edit or recall.
    _item(bob, "first draft").focus()
    bob.page.keyboard.press("Enter")
    actions = bob.page.locator(".msg-menu .popup-item").evaluate_all("(n) => n.map((x) => x.dataset.action)")
    assert actions == ["reply", "react", "hide"]
    bob.page.keyboard.press("Escape")

    # Edit inline: Enter saves; both see the new text, marked edited.
    _menu(alice, "first draft", "edit")
    editor = alice.page.locator("textarea.edit-input")
    editor.wait_for()
    alice.page.wait_for_function("() => document.activeElement.classList.contains('edit-input')", timeout=3000)
    editor.fill("final text")
    editor.press("Enter")
    for chat in (alice, bob):
        _item(chat, "final text").locator(".edited").wait_for()
    assert _item(bob, "first draft").count() == 0

    # Reply: the quoted preview above the composer, then in the message for both.
    _menu(bob, "final text", "reply")
    bar = bob.page.locator("#reply-bar")
    bar.wait_for(state="visible")
    assert "Replying to Alice" in bar.inner_text() and "final text" in bar.inner_text()
    bob.screenshot("lifecycle-reply-bar-1280")
    bob.type_and_send("agreed")
    bar.wait_for(state="hidden")
    for chat in (alice, bob):
        quote = _item(chat, "agreed").locator(".reply-quote")
        quote.wait_for()
        assert "Alice" in quote.inner_text() and "final text" in quote.inner_text()

    # React from the picker (arrow keys), counts for both; mine is marked, a click removes it.
    _menu(bob, "final text", "react")
    bob.page.locator(".emoji-picker").wait_for()
    bob.page.keyboard.press("ArrowRight")
    bob.page.keyboard.press("Enter")
    for chat in (alice, bob):
        _item(chat, "final text").locator(".reaction", has_text="❤️").locator(".reaction-count", has_text="1").wait_for()
    assert "me" in _item(bob, "final text").locator(".reaction").get_attribute("class")
    assert "me" not in _item(alice, "final text").locator(".reaction").get_attribute("class")
    alice.page.wait_for_timeout(200)
    # Alice adds hers by clicking Bob's chip: 2.
    _item(alice, "final text").locator(".reaction").click()
    for chat in (alice, bob):
        _item(chat, "final text").locator(".reaction-count", has_text="2").wait_for()
    alice.screenshot("lifecycle-reply-react-1280")
    # History says which reaction is mine after a reload.
    bob.page.reload()
    bob.wait_online()
    bob.open("Alice")
    chip = _item(bob, "final text").locator(".reaction.me")
    chip.wait_for()
    chip.click()
    for chat in (alice, bob):
        _item(chat, "final text").locator(".reaction-count", has_text="1").wait_for()

    # Recall: both see it gone.
    alice.send("oops, wrong chat")
    bob.wait_message("oops, wrong chat")
    _menu(alice, "oops, wrong chat", "recall")
    for chat in (alice, bob):
        chat.page.locator("#message-list li.message.recalled .bubble", has_text="Message recalled").wait_for()
        assert _item(chat, "oops, wrong chat").count() == 0
    bob.screenshot("lifecycle-recalled-1280")

    # Delete for me: gone for Bob only, also after a reload (no gap pulled back in).
    bob.send("just for me")
    alice.wait_message("just for me")
    _menu(bob, "just for me", "hide")
    _item(bob, "just for me").wait_for(state="detached")
    bob.page.reload()
    bob.wait_online()
    bob.open("Alice")
    bob.wait_message("agreed")
    bob.page.wait_for_timeout(500)
    assert _item(bob, "just for me").count() == 0
    assert _item(alice, "just for me").count() == 1
    bob.send("after the hidden one")
    alice.wait_message("after the hidden one")


def test_message_menu_on_a_phone_in_dark_mode(chat_server, person):  # noqa: F811
    alice, bob, _, _ = _pair(chat_server, person, PHONE, color_scheme="dark")
    alice.send("tap me")
    bob.open("Alice")
    bob.wait_message("tap me")
    # On a touch-sized screen the menu button is there without hovering.
    _item(bob, "tap me").locator(".msg-menu-button").click()
    menu = bob.page.locator(".msg-menu")
    menu.wait_for()
    box = menu.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    bob.screenshot("lifecycle-menu-375")
    bob.page.locator(".msg-menu .popup-item[data-action=reply]").click()
    bob.page.locator("#reply-bar").wait_for(state="visible")
    bob.type_and_send("tapped")
    _item(bob, "tapped").locator(".reply-quote").wait_for()
    _item(alice, "tapped").locator(".reply-quote").wait_for()
    # React by touch: the picker fits the screen; the chip shows for both.
    _item(alice, "tapped").locator(".msg-menu-button").click()
    alice.page.locator(".msg-menu .popup-item[data-action=react]").click()
    picker = alice.page.locator(".emoji-picker")
    picker.wait_for()
    box = picker.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    picker.locator(".popup-item").first.click()
    _item(bob, "tapped").locator(".reaction", has_text="👍").wait_for()
    # The update frame replaced the message: its quote is still there.
    for chat in (alice, bob):
        assert _item(chat, "tapped").locator(".reply-quote").count() == 1
    bob.screenshot("lifecycle-reply-375")


# --- attachments -------------------------------------------------------------------------------


def test_attachments_by_button_and_by_drop(chat_server, person):  # noqa: F811
    alice, bob, _, _ = _pair(chat_server, person)
    alice.send("pictures coming")
    bob.open("Alice")
    bob.wait_message("pictures coming")

    # The button: a file chooser, an image with its thumbnail for both.
    alice.page.set_input_files("#attach-input", files=[{"name": "sun.png", "mimeType": "image/png", "buffer": _png()}])
    for chat in (alice, bob):
        image = chat.page.locator("#message-list .attachment-image img[alt='sun.png']")
        image.wait_for()
        chat.page.wait_for_function(
            "() => { const i = document.querySelector(\"#message-list .attachment-image img[alt='sun.png']\");"
            " return i && i.complete && i.naturalWidth > 0; }"
        )
    # The full image behind the thumbnail is downloadable by the other member.
    href = bob.page.locator("#message-list .attachment-image").get_attribute("href")
    status = bob.page.evaluate("(url) => fetch(url).then((r) => r.status)", href)
    assert status == 200

    # Drag and drop onto the conversation: the overlay, then a file link.
    alice.page.evaluate(
        """() => {
          const dt = new DataTransfer();
          dt.items.add(new File(["meeting notes\\nsecond line\\n"], "notes.txt", { type: "text/plain" }));
          const target = document.getElementById("messages");
          target.dispatchEvent(new DragEvent("dragenter", { dataTransfer: dt, bubbles: true, cancelable: true }));
          target.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
          window.__overlay = !document.getElementById("drop-overlay").hidden;
          target.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
        }"""
    )
    assert alice.page.evaluate("() => window.__overlay") is True
    assert alice.page.locator("#drop-overlay").is_hidden()
    for chat in (alice, bob):
        link = chat.page.locator("#message-list a.attachment-file", has_text="notes.txt")
        link.wait_for()
    href = bob.page.locator("#message-list a.attachment-file").get_attribute("href")
    body = bob.page.evaluate("(url) => fetch(url).then((r) => r.text())", href)
    assert body.startswith("meeting notes")
    bob.screenshot("lifecycle-attachments-1280")

    # A type the server refuses is said so, and nothing is sent.
    before = alice.page.locator("#message-list li.message").count()
    alice.page.set_input_files("#attach-input", files=[{"name": "tool.exe", "mimeType": "application/octet-stream",
                                                          "buffer": b"MZ\x90\x00" + bytes(range(256)) * 8}])
    status = alice.page.locator("#upload-status.error")
    status.wait_for()
    assert "tool.exe" in status.inner_text()
    assert alice.page.locator("#message-list li.message").count() == before


def test_upload_over_the_limit_says_the_limit(small_uploads_server, person):  # noqa: ANN001
    alice, bob, _, _ = _pair(small_uploads_server, person)
    alice.page.set_input_files("#attach-input", files=[{"name": "big.txt", "mimeType": "text/plain",
                                                          "buffer": b"x" * (UPLOAD_LIMIT * 3)}])
    status = alice.page.locator("#upload-status.error")
    status.wait_for()
    # The server's details.max_bytes, in words.
    assert status.inner_text() == "big.txt is too large (at most 3.9 KB)."
    assert alice.page.locator("#message-list li.message").count() == 0
    alice.screenshot("lifecycle-upload-too-large-1280")
    # A file under the limit still goes.
    alice.page.set_input_files("#attach-input", files=[{"name": "small.txt", "mimeType": "text/plain", "buffer": b"tiny\n"}])
    status.wait_for(state="hidden")
    bob.open("Alice")
    bob.page.locator("#message-list a.attachment-file", has_text="small.txt").wait_for()


def test_attachment_on_a_phone(chat_server, person):  # noqa: F811
    alice, bob, _, _ = _pair(chat_server, person, PHONE)
    alice.page.set_input_files("#attach-input", files=[{"name": "tall.png", "mimeType": "image/png", "buffer": _png(200, 400)}])
    bob.open("Alice")
    image = bob.page.locator("#message-list .attachment-image img[alt='tall.png']")
    image.wait_for()
    bob.page.wait_for_function("() => { const i = document.querySelector('#message-list .attachment-image img');"
                               " return i && i.complete && i.naturalWidth > 0; }")
    box = image.bounding_box()
    assert box["width"] <= 240 and box["x"] + box["width"] <= PHONE["width"]
    bob.screenshot("lifecycle-attachment-375")


# --- mentions and the member panel -----------------------------------------------------------


def test_mention_autocomplete_badge_and_members(chat_server, person):  # noqa: F811
    o_name, b_name, c_name = unique("olga"), unique("ben"), unique("cleo")
    olga = person(chat_server).register(o_name, nickname="Olga")
    ben = person(chat_server).register(b_name, nickname="Ben")
    cleo = person(chat_server).register(c_name, nickname="Cleo")
    team = unique("Crew ")
    group_id = olga.create_group(team)
    ben.join_group(group_id, team)
    cleo.join_group(group_id, team)
    cleo.start_chat(o_name, "Olga")  # Cleo looks at another chat

    ben.open(team)
    ben.page.click("#composer-input")
    ben.page.keyboard.type("hey @cl", delay=30)
    options = ben.page.locator("#mention-list .mention-option")
    options.first.wait_for()
    assert options.count() == 1 and options.first.get_attribute("data-username") == c_name
    ben.screenshot("lifecycle-mention-list-1280")
    ben.page.keyboard.press("Enter")  # picks the member, does not send
    assert ben.page.input_value("#composer-input") == f"hey @{c_name} "
    ben.page.keyboard.type("look at this")
    ben.page.keyboard.press("Enter")
    text = f"hey @{c_name} look at this"
    ben.wait_message(text)
    ben.message(text).locator(".mention", has_text=f"@{c_name}").wait_for()

    # Cleo: the mention badge on the group in her list, then the highlighted mention.
    cleo.conversation(team).locator(".mention-badge").wait_for()
    cleo.screenshot("lifecycle-mention-badge-1280")
    cleo.open(team)
    cleo.message(text).locator(".mention.mention-me").wait_for()
    cleo.conversation(team).locator(".mention-badge").wait_for(state="detached")
    # Escape closes the list; @ with no match offers nothing.
    cleo.page.click("#composer-input")
    cleo.page.keyboard.type("@", delay=30)
    cleo.page.locator("#mention-list .mention-option").first.wait_for()
    assert cleo.page.locator("#mention-list .mention-option").count() == 2  # Olga and Ben, not herself
    cleo.page.keyboard.press("Escape")
    cleo.page.locator("#mention-list").wait_for(state="hidden")


def test_member_panel_mentions_a_member(chat_server, person):  # noqa: F811
    o_name, b_name = unique("olga"), unique("ben")
    olga = person(chat_server).register(o_name, nickname="Olga")
    ben = person(chat_server).register(b_name, nickname="Ben")
    team = unique("Band ")
    group_id = olga.create_group(team)
    ben.join_group(group_id, team)

    # The group panel (issue 11) lists the members; each other member has a Mention action.
    olga.page.click("#group-info")
    panel = olga.page.locator("#group-panel")
    panel.wait_for(state="visible")
    for name in ("Olga", "Ben"):
        panel.locator(".group-member", has_text=name).wait_for()
    assert panel.locator(".group-member", has_text="Olga").locator(".mention-member").count() == 0
    panel.locator(".group-member", has_text="Ben").locator(".mention-member").click()
    assert olga.page.input_value("#composer-input") == f"@{b_name} "
    assert olga.page.evaluate("() => document.activeElement.id") == "composer-input"
    olga.screenshot("lifecycle-members-1280")
    olga.page.keyboard.type("welcome!")
    olga.page.keyboard.press("Enter")
    ben.wait_message(f"@{b_name} welcome!")
