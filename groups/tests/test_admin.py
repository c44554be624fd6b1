"""Django admin of groups: list with member_count, search by name, member inline."""
from __future__ import annotations

import pytest

from groups.services import create_group


@pytest.fixture
def staff_client(client, make_user):
    admin = make_user("root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    return client


@pytest.mark.django_db
class TestGroupAdmin:
    def test_list_shows_member_count_and_searches_by_name(self, staff_client, alice, bob):
        create_group(owner_id=alice.id, name="Hikers", member_ids=[bob.id])
        create_group(owner_id=bob.id, name="Readers")
        page = staff_client.get("/admin/groups/group/", {"q": "hik"}).content.decode()
        assert "Hikers" in page and "Readers" not in page
        assert "column-member_count" in page
        assert '<td class="field-member_count">2</td>' in page

    def test_change_page_lists_members_read_only_and_owner_by_raw_id(self, staff_client, alice, bob):
        group = create_group(owner_id=alice.id, name="Hikers", member_ids=[bob.id])
        r = staff_client.get(f"/admin/groups/group/{group.id}/change/")
        assert r.status_code == 200
        page = r.content.decode()
        assert "alice" in page and "bob" in page
        assert 'class="vForeignKeyRawIdAdminField"' in page  # owner is a raw id input
        assert 'name="members-0-role"' not in page  # membership goes through the API

    def test_group_member_list(self, staff_client, alice, bob):
        create_group(owner_id=alice.id, name="Hikers", member_ids=[bob.id])
        r = staff_client.get("/admin/groups/groupmember/", {"q": "bob"})
        assert r.status_code == 200
        assert "Hikers" in r.content.decode()
        # No add button: adding rows here would bypass member_count and the conversation.
        assert staff_client.get("/admin/groups/groupmember/add/").status_code == 403
