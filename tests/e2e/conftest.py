"""Fixtures of the multi-process end-to-end tests: a Stack of real GoChat processes that
share this test's PostgreSQL test database, Redis and Tansu broker (with per-test topic
names), and access tokens for the WebSocket clients."""
from __future__ import annotations

import pytest


@pytest.fixture
def token_for():
    """token_for(user) -> an access JWT; children share SECRET_KEY, so they accept it."""
    from rest_framework_simplejwt.tokens import AccessToken

    return lambda user: str(AccessToken.for_user(user))


@pytest.fixture
async def _close_async_db_connections():
    """After the test, close the connections its sync_to_async calls opened in asgiref's
    worker thread; left open, they keep the test database from being dropped."""
    yield
    from asgiref.sync import sync_to_async
    from django.db import connections

    await sync_to_async(connections.close_all)()


@pytest.fixture
def stack_env(settings, kafka_bus, redis_presence, _close_async_db_connections):
    """env_from_settings(**overrides): a child environment on this test's services.

    Needs transactional PostgreSQL (django_db(transaction=True)): children read what the
    test committed, and the test reads what they wrote.
    """
    from tests.harness.stack import env_from_settings

    # Users made here only ever authenticate by token: skip the slow password hash.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return env_from_settings


@pytest.fixture
def launch(tmp_path):
    """launch(env) -> a Stack whose processes are stopped after the test (logs under tmp_path)."""
    from tests.harness.stack import Stack

    stacks: list[Stack] = []

    def factory(env: dict[str, str]) -> Stack:
        stack = Stack(env, tmp_path / f"procs{len(stacks)}")
        stacks.append(stack)
        return stack

    yield factory
    for stack in stacks:
        stack.stop()
