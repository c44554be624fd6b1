"""Attachments (issue 10): POST uploads, sending with attachment_id over REST and the
WebSocket, signed downloads for members only, and the orphan sweep."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from PIL import Image

from messaging.models import Attachment, Message

UPLOADS = "/api/v1/uploads"
SEND = "/api/v1/messages/send"
HISTORY = "/api/v1/messages/history"
ROOT = Path(__file__).resolve().parents[2]

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


@pytest.fixture
def media(settings, tmp_path):
    """The attachments storage on a fresh directory of its own."""
    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "attachments")},
        },
    }
    return tmp_path / "attachments"


def png_bytes(width: int = 640, height: int = 480, mode: str = "RGB") -> bytes:
    image = Image.new(mode, (width, height), (200, 30, 30) if mode == "RGB" else (200, 30, 30, 128))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def named(data: bytes, name: str, content_type: str | None = None):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type=content_type or "application/octet-stream")


def upload(client, data: bytes, name: str = "photo.png", content_type: str | None = None):
    return client.post(UPLOADS, {"file": named(data, name, content_type)}, format="multipart")


def fetch(url: str):
    """GET a signed URL as a browser would: no bearer header."""
    from rest_framework.test import APIClient

    return APIClient().get(url)


def body_of(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def assert_error(response, status: int, code: int) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "details"} and body["code"] == code
    return body


def files_in(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()] if directory.exists() else []


# --- upload --------------------------------------------------------------------------------

@pytest.mark.django_db
class TestUpload:
    def test_image_gets_dimensions_and_a_thumbnail(self, media, client_for, alice):
        data = png_bytes(640, 480)
        r = upload(client_for(alice), data, "holiday.png")
        assert r.status_code == 201, r.content
        body = r.json()
        assert body["name"] == "holiday.png"
        assert body["size"] == len(data)
        assert body["content_type"] == "image/png"
        assert (body["width"], body["height"]) == (640, 480)
        row = Attachment.objects.get(id=int(body["attachment_id"]))
        assert row.uploader_id == alice.id and row.message_id is None
        assert (media / row.storage_name).read_bytes() == data
        # The uploader fetches their own unsent upload, by its signed URL.
        got = fetch(body["url"])
        assert got.status_code == 200 and body_of(got) == data
        assert got["Content-Type"] == "image/png"
        thumb = fetch(body["thumbnail_url"])
        assert thumb.status_code == 200
        with Image.open(io.BytesIO(body_of(thumb))) as image:
            assert image.size == (320, 240)

    def test_over_the_limit_is_1001_with_max_bytes_and_stores_nothing(self, media, settings, client_for, alice):
        settings.UPLOAD_MAX_BYTES = 1000
        # Within the multipart slack: refused by the upload handler while reading.
        r = upload(client_for(alice), b"x" * 2000, "notes.txt")
        assert assert_error(r, 413, 1001)["details"]["max_bytes"] == 1000
        # Far over: refused by Content-Length before the body is read.
        r = upload(client_for(alice), b"x" * 200_000, "notes.txt")
        assert assert_error(r, 413, 1001)["details"]["max_bytes"] == 1000
        assert not Attachment.objects.exists()
        assert files_in(media) == []

    def test_disallowed_type_is_refused(self, media, client_for, alice):
        elf = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 200
        body = assert_error(upload(client_for(alice), elf, "tool.pdf"), 400, 1001)
        assert "file" in body["details"] and "allowed_types" in body["details"]
        assert not Attachment.objects.exists()

    def test_allowed_types_setting_is_applied(self, media, settings, client_for, alice):
        settings.UPLOAD_ALLOWED_TYPES = ["image/*"]
        assert upload(client_for(alice), png_bytes(10, 10)).status_code == 201
        assert_error(upload(client_for(alice), PDF, "paper.pdf"), 400, 1001)

    def test_a_png_name_on_non_image_bytes_is_refused(self, media, client_for, alice):
        body = assert_error(upload(client_for(alice), b"just some text, not pixels\n", "photo.png"), 400, 1001)
        assert "file" in body["details"]
        # Declared as an image by its Content-Type with a neutral name: the same.
        assert_error(upload(client_for(alice), b"plain text\n", "photo", "image/jpeg"), 400, 1001)
        # PNG magic with a broken body: Pillow cannot decode it.
        assert_error(upload(client_for(alice), b"\x89PNG\r\n\x1a\n" + b"\x00" * 64, "photo.png"), 400, 1001)
        assert not Attachment.objects.exists() and files_in(media) == []

    def test_type_comes_from_the_bytes_not_the_name(self, media, client_for, alice):
        r = upload(client_for(alice), PDF, "report.bin", "text/html")
        assert r.status_code == 201, r.content
        assert r.json()["content_type"] == "application/pdf"
        assert "width" not in r.json() and "thumbnail_url" not in r.json()

    def test_no_file_and_no_auth(self, media, client_for, api_client, alice):
        assert_error(client_for(alice).post(UPLOADS, {}, format="multipart"), 400, 1001)
        assert_error(api_client.post(UPLOADS, {"file": named(PDF, "a.pdf")}, format="multipart"), 401, 1002)


# --- send and fetch ------------------------------------------------------------------------

@pytest.mark.django_db
class TestSendAndFetch:
    def _upload(self, client, data=None, name="photo.png") -> str:
        r = upload(client, data or png_bytes(64, 48), name)
        assert r.status_code == 201, r.content
        return r.json()["attachment_id"]

    def test_rest_send_then_member_downloads_and_non_member_cannot(
        self, media, client_for, alice, bob, carol, single_chat
    ):
        data = png_bytes(64, 48)
        attachment_id = self._upload(client_for(alice), data)
        r = client_for(alice).post(
            SEND,
            {"conversation_id": str(single_chat.id), "client_msg_id": "img-1", "attachment_id": attachment_id},
            format="json",
        )
        assert r.status_code == 201, r.content
        message = r.json()["message"]
        assert message["message_type"] == "image"  # taken from the upload
        assert message["content"] == ""
        assert message["attachment"]["attachment_id"] == attachment_id
        assert (message["attachment"]["width"], message["attachment"]["height"]) == (64, 48)
        assert Attachment.objects.get(id=int(attachment_id)).message_id == int(message["id"])

        history = client_for(bob).get(HISTORY, {"conversation_id": str(single_chat.id)}).json()["messages"]
        (shown,) = history
        assert shown["attachment"]["name"] == "photo.png"
        got = fetch(shown["attachment"]["url"])
        assert got.status_code == 200 and body_of(got) == data
        assert fetch(shown["attachment"]["thumbnail_url"]).status_code == 200
        # A member asks for a fresh URL.
        fresh = client_for(bob).get(f"/api/v1/attachments/{attachment_id}")
        assert fresh.status_code == 200 and fetch(fresh.json()["url"]).status_code == 200
        # The conversation preview names the file when there is no caption.
        single_chat.refresh_from_db()
        assert single_chat.last_message_preview == "[image] photo.png"

        # Carol is no member: no fresh URL, no history, and a URL of hers cannot be forged.
        assert_error(client_for(carol).get(f"/api/v1/attachments/{attachment_id}"), 403, 1005)
        assert_error(client_for(carol).get(HISTORY, {"conversation_id": str(single_chat.id)}), 403, 1005)
        url = shown["attachment"]["url"]
        forged = url[:-3] + ("aaa" if not url.endswith("aaa") else "bbb")
        assert_error(fetch(forged), 403, 1005)
        assert_error(fetch(url.split("?")[0]), 403, 1005)
        # A file URL's signature does not open the thumbnail, nor another attachment.
        sig = parse_qs(urlsplit(url).query)["sig"][0]
        assert_error(fetch(f"/api/v1/attachments/{attachment_id}/thumbnail?sig={sig}"), 403, 1005)
        other = self._upload(client_for(carol))
        assert_error(fetch(f"/api/v1/attachments/{other}/download?sig={sig}"), 403, 1005)

    def test_an_unsent_upload_is_for_its_uploader_only(self, media, client_for, alice, bob):
        attachment_id = self._upload(client_for(alice))
        assert client_for(alice).get(f"/api/v1/attachments/{attachment_id}").status_code == 200
        assert_error(client_for(bob).get(f"/api/v1/attachments/{attachment_id}"), 403, 1005)
        assert_error(client_for(bob).get("/api/v1/attachments/123456789"), 404, 1003)

    def test_an_expired_signature_is_refused(self, media, settings, client_for, alice):
        r = upload(client_for(alice), png_bytes(8, 8))
        url = r.json()["url"]
        assert fetch(url).status_code == 200
        settings.ATTACHMENT_URL_TTL_SECONDS = 1
        time.sleep(2.1)
        body = assert_error(fetch(url), 403, 1005)
        assert "expired" in body["message"]

    def test_another_users_upload_is_refused(self, media, client_for, alice, bob, single_chat):
        bobs = self._upload(client_for(bob))
        r = client_for(alice).post(
            SEND, {"conversation_id": str(single_chat.id), "client_msg_id": "steal", "attachment_id": bobs},
            format="json",
        )
        assert "attachment_id" in assert_error(r, 400, 1001)["details"]
        assert not Message.objects.exists()
        assert Attachment.objects.get(id=int(bobs)).message_id is None

    def test_type_must_fit_and_an_upload_is_sent_once(self, media, client_for, alice, single_chat):
        client = client_for(alice)
        pdf = self._upload(client, PDF, "paper.pdf")

        def send(client_msg_id, **extra):
            body = {"conversation_id": str(single_chat.id), "client_msg_id": client_msg_id, "attachment_id": pdf}
            return client.post(SEND, {**body, **extra}, format="json")

        assert "message_type" in assert_error(send("t1", message_type="image"), 400, 1001)["details"]
        assert_error(send("t2", message_type="text", content="look"), 400, 1001)
        first = send("t3", content="the paper")
        assert first.status_code == 201, first.content
        assert first.json()["message"]["message_type"] == "file"
        # A retry of the same send is answered with the first message, attachment and all.
        again = send("t3", content="the paper")
        assert again.status_code == 200
        assert again.json()["message"]["id"] == first.json()["message"]["id"]
        assert again.json()["message"]["attachment"]["attachment_id"] == pdf
        # A new message with the same upload is refused.
        assert "attachment_id" in assert_error(send("t4"), 400, 1001)["details"]
        assert Message.objects.count() == 1
        # Without an attachment the content is still required.
        r = client.post(SEND, {"conversation_id": str(single_chat.id), "client_msg_id": "t5"}, format="json")
        assert "content" in assert_error(r, 400, 1001)["details"]

    def test_batch_checks_attachments_in_one_query_and_links_in_one_statement(self, media, client_for, alice, single_chat):
        from messaging.services import SendRequest, send_messages

        ids = [int(self._upload(client_for(alice))) for _ in range(3)]
        requests = [
            SendRequest(sender_id=alice.id, conversation_id=single_chat.id, content="", client_msg_id=f"b{i}",
                        message_type="", attachment_id=attachment_id)
            for i, attachment_id in enumerate(ids)
        ]
        requests.append(SendRequest(sender_id=alice.id, conversation_id=single_chat.id, content="txt", client_msg_id="b9"))
        # The same upload twice in one batch: the second is refused.
        requests.append(SendRequest(sender_id=alice.id, conversation_id=single_chat.id, content="", client_msg_id="bx",
                                    message_type="", attachment_id=ids[0]))
        with CaptureQueriesContext(connection) as queries:
            outcomes = send_messages(requests)
        table = Attachment._meta.db_table
        touching = [q["sql"] for q in queries.captured_queries if table in q["sql"]]
        assert len(touching) == 2, touching  # the locking read and the one UPDATE
        assert [getattr(o, "code", None) for o in outcomes] == [None, None, None, None, 1001]
        linked = dict(Attachment.objects.filter(id__in=ids).values_list("id", "message_id"))
        assert linked == {i: o.message.id for i, o in zip(ids, outcomes)}

        # History reads every attachment of a page in one query, and none for text only.
        from messaging.selectors import conversation_history

        with CaptureQueriesContext(connection) as queries:
            page = conversation_history(user_id=alice.id, conversation_id=single_chat.id)
        assert len([q for q in queries.captured_queries if table in q["sql"]]) == 1
        from messaging.representations import message_dict

        shown = [message_dict(m)["attachment"] for m in page.messages]
        assert [a and a["attachment_id"] for a in shown] == [str(i) for i in ids] + [None]
        with CaptureQueriesContext(connection) as queries:
            conversation_history(user_id=alice.id, conversation_id=single_chat.id, after_seq=3)
        assert not [q for q in queries.captured_queries if table in q["sql"]]

        with CaptureQueriesContext(connection) as queries:
            send_messages([SendRequest(sender_id=alice.id, conversation_id=single_chat.id, content="t", client_msg_id="n")])
        assert not [q for q in queries.captured_queries if table in q["sql"]]


# --- WebSocket ------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
async def test_ws_send_with_attachment_reaches_the_peer_with_a_signed_url(media, ws_client, alice, bob, single_chat, client_for):
    data = png_bytes(32, 16)
    r = await database_sync_to_async(lambda: upload(client_for(alice), data, "cat.png"))()
    assert r.status_code == 201, r.content
    attachment_id = r.json()["attachment_id"]
    alice_ws = await ws_client(alice)
    bob_ws = await ws_client(bob)
    await alice_ws.send_to(text_data=json.dumps({"type": "send-message", "data": {
        "client_msg_id": "ws-img", "conversation_id": str(single_chat.id), "attachment_id": attachment_id,
        "content": "my cat",
    }}))
    ack = json.loads(await alice_ws.receive_from(timeout=10))
    assert ack["type"] == "send-ack", ack
    pushed = json.loads(await bob_ws.receive_from(timeout=10))
    assert pushed["type"] == "new-message"
    message = pushed["data"]["message"]
    assert message["message_type"] == "image" and message["content"] == "my cat"
    attachment = message["attachment"]
    assert attachment["attachment_id"] == attachment_id
    assert (attachment["width"], attachment["height"], attachment["size"]) == (32, 16, len(data))
    got = await database_sync_to_async(fetch)(attachment["url"])
    assert got.status_code == 200 and body_of(got) == data
    assert (await database_sync_to_async(fetch)(attachment["thumbnail_url"])).status_code == 200

    # Bad input gets an error frame naming the field; an upload of someone else 1001 too.
    await alice_ws.send_to(text_data=json.dumps({"type": "send-message", "data": {
        "client_msg_id": "ws-bad", "conversation_id": str(single_chat.id), "attachment_id": "x1",
    }}))
    error = json.loads(await alice_ws.receive_from(timeout=10))
    assert error["type"] == "error" and error["data"]["code"] == 1001 and "attachment_id" in error["data"]["details"]
    await alice_ws.send_to(text_data=json.dumps({"type": "send-message", "data": {
        "client_msg_id": "ws-again", "conversation_id": str(single_chat.id), "attachment_id": attachment_id,
    }}))
    error = json.loads(await alice_ws.receive_from(timeout=10))
    assert error["type"] == "error" and error["data"]["code"] == 1001 and error["data"]["client_msg_id"] == "ws-again"


# --- orphan sweep -------------------------------------------------------------------------

@pytest.mark.django_db
def test_sweep_deletes_old_orphans_with_their_files_and_keeps_the_rest(media, settings, client_for, alice, single_chat):
    from tasks.processors.maintenance import sweep_attachments

    client = client_for(alice)
    ids = [int(upload(client, png_bytes(20, 20)).json()["attachment_id"]) for _ in range(3)]
    orphan, sent, fresh = ids
    r = client.post(SEND, {"conversation_id": str(single_chat.id), "client_msg_id": "s", "attachment_id": str(sent)},
                    format="json")
    assert r.status_code == 201
    long_ago = timezone.now() - timedelta(seconds=settings.ATTACHMENT_ORPHAN_SECONDS + 60)
    Attachment.objects.filter(id__in=[orphan, sent]).update(created_at=long_ago)
    rows = {a.id: a for a in Attachment.objects.all()}
    orphan_files = [media / rows[orphan].storage_name, media / rows[orphan].thumbnail_name]
    assert all(p.exists() for p in orphan_files)

    assert sweep_attachments.apply().get() == {"deleted": 1}
    assert set(Attachment.objects.values_list("id", flat=True)) == {sent, fresh}
    assert not any(p.exists() for p in orphan_files)
    for kept in (sent, fresh):
        assert (media / rows[kept].storage_name).exists() and (media / rows[kept].thumbnail_name).exists()
    # Idempotent: nothing left to do (the command is the same sweep).
    assert sweep_attachments.apply().get() == {"deleted": 0}
    from django.core.management import call_command

    out = io.StringIO()
    call_command("sweep_attachments", "--older-than", "0", stdout=out)
    assert out.getvalue().strip() == "1 orphaned uploads deleted"  # the fresh one, unsent
    assert set(Attachment.objects.values_list("id", flat=True)) == {sent}
    assert settings.CELERY_BEAT_SCHEDULE["sweep-attachments"]["task"] == "tasks.sweep_attachments"
    assert sweep_attachments.max_retries == 3 and sweep_attachments.autoretry_for


# --- S3 (no network: the store is never reached, only configured and signed for) -----------

def test_s3_storage_is_built_from_the_environment():
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("AWS_", "ATTACHMENT_", "DATABASE_URL", "REDIS_URL", "KAFKA_", "CELERY_"))
    }
    env.update({
        "DJANGO_SETTINGS_MODULE": "gochat_site.settings",
        "ATTACHMENT_STORAGE": "s3",
        "AWS_STORAGE_BUCKET_NAME": "gochat-files",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "secret-example",
        "AWS_S3_REGION_NAME": "eu-west-1",
        "AWS_S3_ENDPOINT_URL": "http://127.0.0.1:9000",
        "ATTACHMENT_URL_TTL_SECONDS": "600",
    })
    script = (
        "import django, json; django.setup();"
        "from messaging import attachments; s = attachments.storage();"
        "print(json.dumps({'cls': type(s).__module__ + '.' + type(s).__name__, 'bucket': s.bucket_name,"
        " 'endpoint': s.endpoint_url, 'location': s.location, 'acl': s.default_acl,"
        " 'local': attachments.streams_locally(s), 'url': s.url('2026/12/01/1.png')}))"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    built = json.loads(result.stdout.strip().splitlines()[-1])
    assert built["cls"] == "storages.backends.s3.S3Storage"
    assert (built["bucket"], built["endpoint"], built["location"], built["acl"]) == (
        "gochat-files", "http://127.0.0.1:9000", "attachments", None
    )
    assert built["local"] is False
    url = urlsplit(built["url"])
    query = parse_qs(url.query)
    assert url.netloc == "127.0.0.1:9000" and url.path == "/gochat-files/attachments/2026/12/01/1.png"
    assert query["X-Amz-Expires"] == ["600"] and "X-Amz-Signature" in query
    assert query["X-Amz-Credential"][0].startswith("AKIDEXAMPLE/")


@pytest.mark.django_db
def test_s3_download_redirects_to_a_presigned_url(settings, alice):
    from messaging import attachments

    settings.STORAGES = {
        **settings.STORAGES,
        "attachments": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": "gochat-files", "access_key": "AKIDEXAMPLE", "secret_key": "secret-example",
                "region_name": "eu-west-1", "endpoint_url": "http://127.0.0.1:9000", "querystring_expire": 300, "signature_version": "s3v4",
                "location": "attachments",
            },
        },
    }
    row = Attachment.objects.create(
        uploader=alice, storage_name="2026/12/01/7.pdf", name="paper.pdf", size=10, content_type="application/pdf"
    )
    response = fetch(attachments.signed_url(row.id))
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    query = parse_qs(location.query)
    assert location.netloc == "127.0.0.1:9000" and location.path.endswith("/attachments/2026/12/01/7.pdf")
    assert query["response-content-type"] == ["application/pdf"]
    assert "paper.pdf" in query["response-content-disposition"][0]
    assert "X-Amz-Signature" in query
    assert_error(fetch(attachments.signed_url(row.id).replace("sig=", "sig=x")), 403, 1005)


# --- gRPC ------------------------------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_grpc_send_with_attachment_id(media, settings, alice, bob, single_chat):
    import grpc
    from rest_framework_simplejwt.tokens import RefreshToken

    from messaging.grpc.server import build_server
    from messaging.services import upload_attachment
    from protos.gochat.v1 import logic_pb2, logic_pb2_grpc

    mine = upload_attachment(uploader_id=alice.id, file=named(png_bytes(30, 20), "p.png"))
    bobs = upload_attachment(uploader_id=bob.id, file=named(PDF, "b.pdf"))
    server, port, _ = build_server(address="127.0.0.1:0", max_workers=2)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            logic = logic_pb2_grpc.LogicServiceStub(channel)

            def as_user(user):
                return [("authorization", f"Bearer {RefreshToken.for_user(user).access_token}")]

            reply = logic.SendMessage(
                logic_pb2.SendMessageRequest(conversation_id=single_chat.id, client_msg_id="g1", attachment_id=mine.id),
                metadata=as_user(alice),
            )
            assert reply.created and reply.message.message_type == "image"
            got = reply.message.attachment
            assert (got.id, got.name, got.width, got.height, got.has_thumbnail) == (mine.id, "p.png", 30, 20, True)
            history = logic.History(logic_pb2.HistoryRequest(conversation_id=single_chat.id), metadata=as_user(bob))
            assert history.messages[0].attachment.id == mine.id
            with pytest.raises(grpc.RpcError) as refused:
                logic.SendMessage(
                    logic_pb2.SendMessageRequest(conversation_id=single_chat.id, client_msg_id="g2",
                                                 attachment_id=bobs.id),
                    metadata=as_user(alice),
                )
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert dict(refused.value.trailing_metadata())["gochat-error-code"] == "1001"
    finally:
        server.stop(None).wait()


@pytest.mark.django_db
def test_discarding_a_messages_attachment_removes_it_and_its_files(
    media, client_for, alice, bob, single_chat, django_capture_on_commit_callbacks
):
    from django.db import transaction

    from messaging.services import discard_message_attachments

    attachment_id = upload(client_for(alice), png_bytes(12, 12)).json()["attachment_id"]
    r = client_for(alice).post(
        SEND, {"conversation_id": str(single_chat.id), "client_msg_id": "d", "attachment_id": attachment_id},
        format="json",
    )
    message_id = int(r.json()["message"]["id"])
    row = Attachment.objects.get(id=int(attachment_id))
    stored = [media / row.storage_name, media / row.thumbnail_name]
    with django_capture_on_commit_callbacks(execute=True):
        with transaction.atomic():
            assert discard_message_attachments(message_ids=[message_id]) == 1
    assert not Attachment.objects.exists() and not any(p.exists() for p in stored)
    (shown,) = client_for(bob).get(HISTORY, {"conversation_id": str(single_chat.id)}).json()["messages"]
    assert shown["attachment"] is None


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_send_waits_for_another_holding_the_upload_and_then_refuses_it(media, alice, bob, carol, single_chat):
    """Two sends of one upload in different conversations (different conversation locks):
    the second waits on the upload's row lock and then sees it taken, instead of linking
    it a second time."""
    import threading

    from django.db import connections, transaction

    from messaging.services import get_or_create_single_conversation, send_message, upload_attachment

    other, _ = get_or_create_single_conversation(user_id=alice.id, peer_id=carol.id)
    upload = upload_attachment(uploader_id=alice.id, file=named(PDF, "x.pdf"))
    holder = send_message(sender_id=alice.id, conversation_id=single_chat.id, content="t", client_msg_id="h").message
    outcome: dict = {}

    def second_send() -> None:
        try:
            send_message(sender_id=alice.id, conversation_id=other.id, content="", client_msg_id="s2",
                         attachment_id=upload.id)
            outcome["result"] = "sent"
        except Exception as exc:  # noqa: BLE001 - the refusal is the expected outcome
            outcome["result"] = exc
        finally:
            connections.close_all()

    with transaction.atomic():
        # What the first send's transaction holds between its check and its link.
        Attachment.objects.select_for_update().filter(id=upload.id).get()
        thread = threading.Thread(target=second_send)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive(), "the second send did not wait for the upload's lock"
        Attachment.objects.filter(id=upload.id).update(message_id=holder.id)
    thread.join(timeout=10)
    assert getattr(outcome["result"], "code", None) == 1001, outcome
    assert "attachment_id" in outcome["result"].details
    assert Attachment.objects.get(id=upload.id).message_id == holder.id
    assert not Message.objects.filter(conversation_id=other.id).exists()


@pytest.mark.django_db(transaction=True)
async def test_under_asgi_a_download_streams_in_chunks(media, settings, alice):
    """Daphne serves ASGI: the file comes as an async iterator, block by block."""
    from django.test import AsyncClient

    from messaging.services import upload_attachment

    data = b"GOCHAT-BLOB\n" + os.urandom(600 * 1024)
    settings.UPLOAD_ALLOWED_TYPES = ["application/octet-stream"]
    attachment = await database_sync_to_async(upload_attachment)(uploader_id=alice.id, file=named(data, "blob.bin"))
    from messaging import attachments

    response = await AsyncClient().get(attachments.signed_url(attachment.id))
    assert response.status_code == 200 and response.is_async
    assert response["Content-Length"] == str(len(data))
    assert response["Content-Disposition"].startswith("attachment;")
    chunks = [chunk async for chunk in response.streaming_content]
    assert len(chunks) == 3 and b"".join(chunks) == data
