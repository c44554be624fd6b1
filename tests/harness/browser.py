"""A real GoChat server process and headless Debian Chromium, for the browser tests.

`ChatServer` runs `manage.py runserver --noreload` in the embedded default (SQLite file,
in-process bus, presence and channel layer) on a loopback port, and can be killed and
started again on the same port and database. `ChatPage` drives the page at `/` the way a
person does: through its forms and buttons, reading what is on the screen.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# Variables that switch a piece to a real service; unset, the server is the embedded default.
SERVICE_VARIABLES = ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS", "CELERY_BROKER_URL", "BUS_BACKEND")
# Playwright waits (ms) for something to appear on a page; generous for a shared 2-core box.
UI_TIMEOUT_MS = 20000


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ChatServer:
    """One embedded-default GoChat server; its SQLite file outlives restarts."""

    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    starts: int = 0
    # Settings of this server only (e.g. a small MESSAGE_MAX_CONTENT_LENGTH).
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sqlite_path(self) -> Path:
        return self.workdir / "gochat.sqlite3"

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in SERVICE_VARIABLES}
        env.update(
            SQLITE_PATH=str(self.sqlite_path),
            GATEWAY_ID=f"gw-browser-{self.port}",
            DJANGO_SETTINGS_MODULE="gochat_site.settings",
            PYTHONUNBUFFERED="1",
            # A module's tests sign up dozens of people from one address within a
            # minute; the sign-up and login throttles are tested through the API.
            THROTTLE_REGISTER="1000/min",
            THROTTLE_LOGIN="1000/min",
        )
        env.update(self.extra_env)
        return env

    def migrate(self) -> None:
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT, env=self._env(), check=True, capture_output=True, timeout=180,
        )

    def start(self, timeout: float = 60.0) -> None:
        assert self.process is None, "already running"
        if self.starts == 0:
            self.migrate()
        self.starts += 1
        log = open(self.log_path, "ab")  # noqa: SIM115 - handed to the child process
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
            cwd=ROOT, env=self._env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server did not answer within {timeout}s:\n{self.log_tail()}")

    def kill(self) -> None:
        """A crash: SIGKILL, no graceful shutdown."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def _signal(self, sig: int) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
        self.process = None

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def launch_chromium(playwright):  # noqa: ANN001, ANN201 - Playwright's own types
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:6]}"


class ChatPage:
    """One person's browser tab on the chat page."""

    def __init__(self, page, server: ChatServer) -> None:  # noqa: ANN001 - playwright Page
        self.page = page
        self.server = server
        page.set_default_timeout(UI_TIMEOUT_MS)

    # --- signing in -------------------------------------------------------------------------
    def register(self, username: str, password: str = "correct-horse-9", nickname: str = "") -> ChatPage:
        page = self.page
        page.goto(self.server.url + "/")
        page.click("#tab-register")
        page.fill("#auth-username", username)
        if nickname:
            page.fill("#auth-nickname", nickname)
        page.fill("#auth-password", password)
        page.click("#auth-submit")
        self._wait_signed_in()
        self.wait_online()
        return self

    def _wait_signed_in(self) -> None:
        """The chat screen, or a failure that says what the page and the server said."""
        page = self.page
        page.wait_for_function(
            "() => !document.querySelector('#app-screen').hidden"
            " || !document.querySelector('#auth-error').hidden",
            timeout=UI_TIMEOUT_MS * 2,
        )
        if page.is_hidden("#app-screen"):
            raise AssertionError(
                f"sign-in refused: {page.inner_text('#auth-error')!r}\nserver log:\n{self.server.log_tail()}"
            )

    def wait_online(self) -> None:
        self.page.wait_for_selector('#conn-status[data-state="online"]')

    def wait_offline(self) -> None:
        self.page.wait_for_selector('#conn-status[data-state="offline"]')

    # --- conversations --------------------------------------------------------------------
    def conversation(self, title: str):  # noqa: ANN201 - playwright Locator
        return self.page.locator("li.conversation").filter(
            has=self.page.locator(".conversation-title", has_text=re.compile(rf"^{re.escape(title)}$"))
        )

    def badge_text(self, title: str) -> str | None:
        badge = self.conversation(title).locator(".badge")
        return badge.inner_text() if badge.count() else None

    def wait_badge(self, title: str, text: str) -> None:
        self.conversation(title).locator(".badge", has_text=re.compile(rf"^{re.escape(text)}$")).wait_for()

    def open(self, title: str) -> None:
        self.conversation(title).click()
        self.page.wait_for_selector(f"#chat-title:text-is('{title}')")
        self.page.wait_for_function("() => !/Loading/.test(document.getElementById('history-status').textContent)")

    def start_chat(self, username: str, title: str) -> None:
        self.page.click("[data-panel=panel-chat]")
        self.page.fill("#chat-username", username)
        self.page.click("#panel-chat button[type=submit]")
        self.page.wait_for_selector(f"#chat-title:text-is('{title}')")

    def create_group(self, name: str) -> str:
        self.page.click("[data-panel=panel-group]")
        self.page.fill("#group-name", name)
        self.page.click("#panel-group button[type=submit]")
        self.page.wait_for_selector(f"#chat-title:text-is('{name}')")
        subtitle = self.page.inner_text("#chat-subtitle")
        match = re.search(r"ID (\d+)", subtitle)
        assert match, subtitle
        return match.group(1)

    def join_group(self, group_id: str, name: str) -> None:
        self.page.click("[data-panel=panel-join]")
        self.page.fill("#join-group-id", group_id)
        self.page.click("#panel-join button[type=submit]")
        self.page.wait_for_selector(f"#chat-title:text-is('{name}')")

    # --- messages -------------------------------------------------------------------------
    def type_and_send(self, text: str) -> None:
        self.page.fill("#composer-input", text)
        self.page.press("#composer-input", "Enter")

    def send(self, text: str) -> None:
        """Send and wait until the server acknowledged it (the bubble says Sent)."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

        self.type_and_send(text)
        try:
            self.message(text).and_(self.page.locator('[data-state="sent"]')).wait_for()
        except PlaywrightTimeoutError as exc:
            raise AssertionError(f"{text!r} was not acknowledged: {self._send_report(text)}") from exc

    def _send_report(self, text: str) -> str:
        """The bubble's state and error, the connection badge and the server's log tail."""
        bubble = self.message(text)
        states = [bubble.nth(i).get_attribute("data-state") for i in range(bubble.count())]
        errors = bubble.locator(".send-error").all_inner_texts()
        badge = self.page.locator("#conn-status")
        return (
            f"bubble states {states}, errors {errors}, badge {badge.get_attribute('data-state')!r}"
            f" ({badge.inner_text()!r})\nserver log tail:\n{self.server.log_tail()}"
        )

    def message(self, text: str):  # noqa: ANN201 - playwright Locator
        return self.page.locator("#message-list li.message").filter(
            has=self.page.locator(".bubble", has_text=re.compile(rf"^{re.escape(text)}$"))
        )

    def wait_message(self, text: str) -> None:
        self.message(text).wait_for()

    def bubbles(self) -> list[str]:
        return self.page.locator("#message-list li.message .bubble").all_inner_texts()

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path))
        return path


# --- pytest fixtures (imported by the browser test modules) -------------------------------


def _require_chromium() -> None:
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def chromium():  # noqa: ANN201
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()


def _server(name: str, extra_env: dict[str, str] | None = None):  # noqa: ANN202
    with tempfile.TemporaryDirectory(prefix=f"gochat-{name}-") as workdir:
        server = ChatServer(Path(workdir), extra_env=dict(extra_env or {}))
        server.start()
        try:
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="module")
def chat_server():  # noqa: ANN201
    """One server for the tests of a module that do not restart it."""
    yield from _server("browser")


@pytest.fixture
def own_chat_server():  # noqa: ANN201
    """A server for one test, which may kill and restart it."""
    yield from _server("restart")


@pytest.fixture
def open_page(chromium):  # noqa: ANN001, ANN201
    """open_page(server) -> ChatPage in a fresh browser context (its own localStorage);
    width/height set the viewport (375 for a phone), other keywords go to new_context
    (color_scheme="dark", permissions=["notifications"], ...)."""
    contexts = []

    def factory(server: ChatServer, *, width: int = 1200, height: int = 760, **options) -> ChatPage:  # noqa: ANN003
        context = chromium.new_context(viewport={"width": width, "height": height}, **options)
        contexts.append(context)
        return ChatPage(context.new_page(), server)

    yield factory
    for context in contexts:
        context.close()
