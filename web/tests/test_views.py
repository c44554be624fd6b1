"""The page at / and its static files, through the full middleware stack."""
import pytest
from django.templatetags.static import static

pytestmark = pytest.mark.django_db


def test_root_serves_the_chat_page(client):
    response = client.get("/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    body = response.content.decode()
    assert "<title>GoChat</title>" in body
    assert static("web/chat.js") in body
    assert static("web/chat.css") in body
    # The page holds no user data: it signs in through the API.
    assert 'id="auth-form"' in body


def test_page_refuses_post(client):
    assert client.post("/").status_code == 405


@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("web/chat.js", "javascript", "new WebSocket("),
        ("web/chat.css", "text/css", ".message.mine"),
    ],
)
def test_static_files_are_served_without_debug(client, settings, path, content_type, marker):
    # DEBUG is off by default: the files must come from WhiteNoise, not the dev server.
    settings.DEBUG = False
    response = client.get(static(path))
    assert response.status_code == 200
    assert content_type in response["Content-Type"]
    assert marker in b"".join(response.streaming_content).decode()


def test_unknown_page_is_404_not_the_app(client):
    assert client.get("/no-such-page").status_code == 404


def test_page_carries_the_message_length_limit(client, settings):
    # The page counts characters against the server's own limit.
    settings.MESSAGE_MAX_CONTENT_LENGTH = 1234
    body = client.get("/").content.decode()
    assert 'data-max-content-length="1234"' in body
