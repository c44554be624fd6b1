"""`python manage.py seed_demo`: demo data for a first look at GoChat — users alice, bob
and carol, the group "GoChat demo" with all three, an alice-bob chat with a few
messages, and (where settings.ALLOW_DEMO_ADMIN: DEBUG or the embedded default) the
demo-only superuser for /admin/. Safe to run again: it creates only what is missing (messages are de-duplicated
by their client_msg_id). It lives in messaging because it uses every app's services."""
from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts import selectors as account_selectors
from accounts import services as account_services
from accounts.models import User
from gochat_site.errors import NotFound
from groups import selectors as group_selectors
from groups import services as group_services
from groups.models import Group
from messaging import services as messaging_services

DEMO_USERS = [("alice", "Alice"), ("bob", "Bob"), ("carol", "Carol")]
DEMO_GROUP = "GoChat demo"
# (sender, client_msg_id, content): fixed ids make a second run a no-op.
DIRECT_MESSAGES = [
    ("alice", "seed-demo-dm-1", "Hi Bob! This is GoChat."),
    ("bob", "seed-demo-dm-2", "Hi Alice, messages arrive in order, with a seq each."),
    ("alice", "seed-demo-dm-3", "And nothing is lost while you are offline."),
]
GROUP_MESSAGES = [
    ("alice", "seed-demo-group-1", "Welcome to the GoChat demo group, everyone!"),
    ("carol", "seed-demo-group-2", "Hello from Carol."),
]


class Command(BaseCommand):
    help = "Create demo users, a group and a one-to-one chat with messages (idempotent)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--password", default="gochat-demo", help="password of newly created demo users")
        # `make run` passes its HOST and PORT, so the links printed are the server's.
        parser.add_argument("--base-url", default="http://127.0.0.1:8000", help="address of the server, for the printed links")

    def handle(self, *args: Any, **options: Any) -> None:
        password: str = options["password"]
        with transaction.atomic():
            users, created = self._users(password)
            group = self._group(users)
            conversation, _ = messaging_services.get_or_create_single_conversation(
                user_id=users["alice"].id, peer_id=users["bob"].id
            )
            sent = self._send(users, conversation.id, DIRECT_MESSAGES)
            sent += self._send(users, group.conversation.id, GROUP_MESSAGES)
            admin = account_services.ensure_demo_admin(password=password) if settings.ALLOW_DEMO_ADMIN else None
        self._summary(users, created, password, group, conversation.id, sent, options["base_url"].rstrip("/"))
        self._admin_summary(admin, password, options["base_url"].rstrip("/"))

    def _users(self, password: str) -> tuple[dict[str, User], set[str]]:
        users: dict[str, User] = {}
        created: set[str] = set()
        for username, nickname in DEMO_USERS:
            try:
                users[username] = account_selectors.user_by_username(username=username)
            except NotFound:
                users[username] = account_services.register_user(username=username, password=password, nickname=nickname)
                created.add(username)
        return users, created

    def _group(self, users: dict[str, User]) -> Group:
        owner = users["alice"]
        group = group_selectors.groups_of_user(user_id=owner.id).filter(name=DEMO_GROUP, owner_id=owner.id).first()
        others = [users["bob"].id, users["carol"].id]
        if group is None:
            return group_services.create_group(owner_id=owner.id, name=DEMO_GROUP, description="Made by seed_demo.", member_ids=others)
        group_services.add_members(group_id=group.id, actor_id=owner.id, user_ids=others)
        return group

    def _send(self, users: dict[str, User], conversation_id: int, messages: list[tuple[str, str, str]]) -> int:
        sent = 0
        for sender, client_msg_id, content in messages:
            result = messaging_services.send_message(
                sender_id=users[sender].id, conversation_id=conversation_id, content=content, client_msg_id=client_msg_id
            )
            sent += result.created
        return sent

    def _summary(self, users, created, password, group, conversation_id, sent, base_url) -> None:  # noqa: ANN001, PLR0913
        write = self.stdout.write
        write(self.style.SUCCESS("GoChat demo data is ready."))
        for username, _ in DEMO_USERS:
            shown = password if username in created else "(existing account: password unchanged)"
            write(f"  user {username:<6} id {users[username].id}  password: {shown}")
        write(f"  group '{group.name}' id {group.id}, conversation {group.conversation.id}")
        write(f"  alice-bob conversation {conversation_id}")
        write(f"  messages sent this run: {sent}")
        write("")
        write(f"  Web client:   {base_url}/")
        write(f"  REST API:     {base_url}/api/v1/  (log in: POST {base_url}/api/v1/auth/login)")
        write(f"  Swagger UI:   {base_url}/api/docs/")
        write(f"  Admin:        {base_url}/admin/")
        write(f"  WebSocket:    {base_url.replace('http', 'ws', 1)}/ws?token=<access>")

    def _admin_summary(self, admin: tuple[User, bool] | None, password: str, base_url: str) -> None:
        write = self.stdout.write
        write("")
        if admin is None:
            write(
                "  No demo superuser: not allowed here (ALLOW_DEMO_ADMIN is off, as outside DEBUG and the embedded "
                "default). Create one with: python manage.py createsuperuser"
            )
            return
        user, was_created = admin
        shown = password if was_created else "(existing account: password unchanged)"
        write(self.style.WARNING("  DEMO ONLY - never use this account on a reachable server:"))
        write(self.style.WARNING(f"  admin login {base_url}/admin/  user {user.username}  password: {shown}"))
        write("  A deployment (DATABASE_URL set, DEBUG off) refuses it: migrate stops with check accounts.E001.")
