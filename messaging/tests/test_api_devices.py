"""REST: push device registration (POST/GET/DELETE devices)."""
from __future__ import annotations

import pytest

URL = "/api/v1/devices"


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code and body["message"] and isinstance(body["details"], dict)
    return body


@pytest.mark.django_db
class TestDevices:
    def test_register_list_delete(self, client_for, alice):
        client = client_for(alice)
        r = client.post(URL, {"platform": "apns", "token": "tok-a"}, format="json")
        assert r.status_code == 201
        device = r.json()
        assert device["platform"] == "apns" and device["token"] == "tok-a"
        assert isinstance(device["id"], str)
        client.post(URL, {"platform": "fcm", "token": "tok-b"}, format="json")
        assert sorted(d["token"] for d in client.get(URL).json()) == ["tok-a", "tok-b"]

        r = client.delete(URL, {"token": "tok-a"}, format="json")
        assert r.status_code == 204
        assert [d["token"] for d in client.get(URL).json()] == ["tok-b"]

    def test_registering_again_keeps_one_row(self, client_for, alice):
        client = client_for(alice)
        client.post(URL, {"platform": "fcm", "token": "same"}, format="json")
        client.post(URL, {"platform": "fcm", "token": "same"}, format="json")
        assert len(client.get(URL).json()) == 1

    def test_token_moves_to_the_new_owner(self, client_for, alice, bob):
        # A phone handed from alice to bob: pushes for alice must stop reaching it.
        client_for(alice).post(URL, {"platform": "apns", "token": "phone"}, format="json")
        assert client_for(bob).post(URL, {"platform": "apns", "token": "phone"}, format="json").status_code == 201
        assert client_for(alice).get(URL).json() == []
        assert [d["token"] for d in client_for(bob).get(URL).json()] == ["phone"]

    def test_list_is_only_mine(self, client_for, alice, bob):
        client_for(alice).post(URL, {"platform": "webpush", "token": "a-token"}, format="json")
        assert client_for(bob).get(URL).json() == []

    def test_cannot_delete_someone_elses_token(self, client_for, alice, bob):
        client_for(alice).post(URL, {"platform": "apns", "token": "mine"}, format="json")
        assert_error(client_for(bob).delete(URL, {"token": "mine"}, format="json"), 404, 1003)
        assert len(client_for(alice).get(URL).json()) == 1

    def test_delete_unknown_token(self, client_for, alice):
        assert_error(client_for(alice).delete(URL, {"token": "nope"}, format="json"), 404, 1003)

    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"platform": "apns"},
            {"token": "t"},
            {"platform": "sms", "token": "t"},
            {"platform": "fcm", "token": ""},
            {"platform": "fcm", "token": 12345},
            {"platform": "fcm", "token": "x" * 513},
        ],
    )
    def test_register_bad_input(self, client_for, alice, body):
        assert_error(client_for(alice).post(URL, body, format="json"), 400, 1001)
        assert client_for(alice).get(URL).json() == []

    @pytest.mark.parametrize("body", [{}, {"token": ""}, {"token": ["t"]}])
    def test_delete_bad_input(self, client_for, alice, body):
        assert_error(client_for(alice).delete(URL, body, format="json"), 400, 1001)

    @pytest.mark.parametrize("method", ["get", "post", "delete"])
    def test_requires_token(self, api_client, method):
        assert_error(getattr(api_client, method)(URL, {"platform": "fcm", "token": "t"}, format="json"), 401, 1002)
