"""REST: the groups endpoints under /api/v1/groups, as their users see them."""
from __future__ import annotations

import pytest

from groups.models import Group, GroupMember
from groups.services import add_members, create_group
from accounts.tests.support import assert_error

GROUPS = "/api/v1/groups"
CREATE = "/api/v1/groups/create"


def url(group, suffix: str = "") -> str:
    gid = group.id if hasattr(group, "id") else group
    return f"{GROUPS}/{gid}{suffix}"


@pytest.fixture
def team(alice, bob):
    """alice (owner) and bob (member)."""
    return create_group(owner_id=alice.id, name="team", member_ids=[bob.id])


@pytest.mark.django_db
class TestCreate:
    def test_creates_a_group_owned_by_the_caller(self, client_for, alice, bob, carol):
        r = client_for(alice).post(
            CREATE,
            {"name": "  Hikers ", "description": "weekend trips", "member_ids": [str(bob.id), carol.id]},
            format="json",
        )
        assert r.status_code == 201, r.content
        body = r.json()
        group = Group.objects.get(id=int(body["id"]))
        assert body["id"] == str(group.id)
        assert body["name"] == "Hikers" and body["description"] == "weekend trips"
        assert body["owner_id"] == str(alice.id) and body["my_role"] == "owner"
        assert body["member_count"] == 3
        assert set(GroupMember.objects.filter(group=group).values_list("user_id", flat=True)) == {alice.id, bob.id, carol.id}

    def test_carries_the_group_conversation_id(self, client_for, alice, bob):
        from messaging.models import Conversation

        body = client_for(alice).post(CREATE, {"name": "chat", "member_ids": [str(bob.id)]}, format="json").json()
        conversation = Conversation.objects.get(group_id=int(body["id"]))
        assert body["conversation_id"] == str(conversation.id)
        # Members can talk in it right away.
        r = client_for(bob).post(
            "/api/v1/messages/send",
            {"conversation_id": body["conversation_id"], "client_msg_id": "g-1", "content": "hi all"},
            format="json",
        )
        assert r.status_code == 201, r.content

    def test_max_members_is_kept(self, client_for, alice, bob):
        body = client_for(alice).post(CREATE, {"name": "duo", "max_members": 2, "member_ids": [str(bob.id)]}, format="json").json()
        assert body["max_members"] == 2

    def test_more_members_than_max_is_a_conflict(self, client_for, alice, bob, carol):
        r = client_for(alice).post(CREATE, {"name": "duo", "max_members": 2, "member_ids": [str(bob.id), str(carol.id)]}, format="json")
        assert_error(r, 409, 1007)
        assert not Group.objects.filter(name="duo").exists()

    def test_unknown_member_id(self, client_for, alice):
        body = assert_error(client_for(alice).post(CREATE, {"name": "x", "member_ids": ["999"]}, format="json"), 404, 1003)
        assert body["details"]["user_ids"] == ["999"]
        assert not Group.objects.exists()

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({}, "name"),
            ({"name": ""}, "name"),
            ({"name": "   "}, "name"),
            ({"name": 7}, "name"),
            ({"name": "n" * 101}, "name"),
            ({"name": "x", "max_members": 0}, "max_members"),
            ({"name": "x", "max_members": "many"}, "max_members"),
            ({"name": "x", "member_ids": "1,2"}, "member_ids"),
            ({"name": "x", "member_ids": ["abc"]}, "member_ids"),
            ({"name": "x", "member_ids": [True]}, "member_ids"),
            ({"name": "x", "avatar": "not-a-url"}, "avatar"),
        ],
    )
    def test_bad_input(self, client_for, alice, body, field):
        result = assert_error(client_for(alice).post(CREATE, body, format="json"), 400, 1001)
        assert field in result["details"]

    def test_max_members_above_the_site_limit(self, client_for, alice, settings):
        settings.GROUP_DEFAULT_MAX_MEMBERS = 1000
        result = assert_error(client_for(alice).post(CREATE, {"name": "x", "max_members": 1001}, format="json"), 400, 1001)
        assert "max_members" in result["details"]

    def test_needs_authentication(self, api_client):
        assert_error(api_client.post(CREATE, {"name": "x"}, format="json"), 401, 1002)


@pytest.mark.django_db
class TestListAndDetail:
    def test_list_is_my_groups_with_my_role(self, client_for, alice, bob, carol, team):
        other = create_group(owner_id=carol.id, name="not mine")
        mine = create_group(owner_id=bob.id, name="bob's", member_ids=[alice.id])
        body = client_for(alice).get(GROUPS).json()
        assert [(g["id"], g["my_role"]) for g in body] == [(str(mine.id), "member"), (str(team.id), "owner")]
        assert str(other.id) not in {g["id"] for g in body}
        assert all(g["conversation_id"] for g in body)

    def test_list_is_empty_for_a_newcomer(self, client_for, make_user):
        assert client_for(make_user()).get(GROUPS).json() == []

    def test_member_sees_the_group(self, client_for, bob, team):
        r = client_for(bob).get(url(team))
        assert r.status_code == 200
        body = r.json()
        assert body["name"] == "team" and body["my_role"] == "member" and body["member_count"] == 2

    def test_non_member_is_forbidden(self, client_for, carol, team):
        assert_error(client_for(carol).get(url(team)), 403, 1005)

    def test_unknown_group(self, client_for, alice):
        assert_error(client_for(alice).get(url(123456789)), 404, 1003)

    # A malformed path id is an unknown URL (gochat_site.id_params.IdConverter).
    @pytest.mark.parametrize("bad", ["abc", "0", "-1", "007", str(2**63), "\u00b3", "\u0663"])
    def test_malformed_id(self, client_for, alice, bad):
        assert_error(client_for(alice).get(url(bad)), 404, 1003)

    def test_needs_authentication(self, api_client, team):
        assert_error(api_client.get(url(team)), 401, 1002)
        assert_error(api_client.get(GROUPS), 401, 1002)


@pytest.mark.django_db
class TestUpdate:
    def test_owner_edits(self, client_for, alice, team):
        r = client_for(alice).patch(url(team), {"name": "Team A", "description": "the A team"}, format="json")
        assert r.status_code == 200, r.content
        assert r.json()["name"] == "Team A" and r.json()["description"] == "the A team"
        team.refresh_from_db()
        assert team.name == "Team A"

    def test_admin_edits(self, client_for, alice, bob, team):
        GroupMember.objects.filter(group=team, user=bob).update(role="admin")
        assert client_for(bob).patch(url(team), {"avatar": "https://cdn.example.com/g.png"}, format="json").status_code == 200

    def test_plain_member_is_forbidden(self, client_for, bob, team):
        assert_error(client_for(bob).patch(url(team), {"name": "mine now"}, format="json"), 403, 1005)
        team.refresh_from_db()
        assert team.name == "team"

    def test_outsider_is_forbidden(self, client_for, carol, team):
        assert_error(client_for(carol).patch(url(team), {"name": "x"}, format="json"), 403, 1005)

    @pytest.mark.parametrize("body", [{"name": ""}, {"name": "  "}, {"name": None}, {"avatar": "nope"}, {"description": 5}])
    def test_bad_input(self, client_for, alice, team, body):
        assert_error(client_for(alice).patch(url(team), body, format="json"), 400, 1001)

    def test_unknown_group(self, client_for, alice):
        assert_error(client_for(alice).patch(url(42), {"name": "x"}, format="json"), 404, 1003)


@pytest.mark.django_db
class TestJoinLeave:
    def test_join(self, client_for, carol, team):
        r = client_for(carol).post(url(team, "/join"))
        assert r.status_code == 200, r.content
        assert r.json()["my_role"] == "member" and r.json()["member_count"] == 3
        assert client_for(carol).get(url(team)).status_code == 200

    def test_join_twice_is_a_conflict(self, client_for, bob, team):
        assert_error(client_for(bob).post(url(team, "/join")), 409, 1007)
        team.refresh_from_db()
        assert team.member_count == 2

    def test_join_a_full_group_is_a_conflict(self, client_for, alice, carol, make_user):
        group = create_group(owner_id=alice.id, name="pair", max_members=2, member_ids=[make_user().id])
        assert_error(client_for(carol).post(url(group, "/join")), 409, 1007)

    def test_join_unknown_group(self, client_for, carol):
        assert_error(client_for(carol).post(url(555, "/join")), 404, 1003)

    def test_leave(self, client_for, bob, team):
        r = client_for(bob).post(url(team, "/leave"))
        assert r.status_code == 204
        assert_error(client_for(bob).get(url(team)), 403, 1005)
        team.refresh_from_db()
        assert team.member_count == 1

    def test_owner_leaving_hands_the_group_over(self, client_for, alice, bob, team):
        assert client_for(alice).post(url(team, "/leave")).status_code == 204
        body = client_for(bob).get(url(team)).json()
        assert body["owner_id"] == str(bob.id) and body["my_role"] == "owner"

    def test_last_member_leaving_deletes_the_group(self, client_for, alice):
        group = create_group(owner_id=alice.id, name="solo")
        assert client_for(alice).post(url(group, "/leave")).status_code == 204
        assert_error(client_for(alice).get(url(group)), 404, 1003)

    def test_leave_when_not_a_member(self, client_for, carol, team):
        assert_error(client_for(carol).post(url(team, "/leave")), 403, 1005)

    def test_leave_malformed_id(self, client_for, carol):
        assert_error(client_for(carol).post(url("x1", "/leave")), 404, 1003)


@pytest.mark.django_db
class TestMembersPage:
    def test_pages_through_every_member_once(self, client_for, alice, group_of):
        group = group_of(7)
        client = client_for(alice)
        seen, after, pages = [], None, 0
        while True:
            params = {"limit": 3, **({"after": after} if after else {})}
            r = client.get(url(group, "/members"), params)
            assert r.status_code == 200, r.content
            body = r.json()
            seen += [m["user"]["id"] for m in body["members"]]
            pages += 1
            after = body["next"]
            if after is None:
                break
        expected = sorted(GroupMember.objects.filter(group=group).values_list("user_id", flat=True))
        assert seen == [str(u) for u in expected]
        assert pages == 3

    def test_exact_page_ends_with_no_next(self, client_for, alice, group_of):
        group = group_of(3)
        body = client_for(alice).get(url(group, "/members"), {"limit": 3}).json()
        assert len(body["members"]) == 3 and body["next"] is None

    def test_member_entry_shape(self, client_for, alice, bob, team):
        members = client_for(bob).get(url(team, "/members")).json()["members"]
        by_name = {m["user"]["username"]: m for m in members}
        assert by_name["alice"]["role"] == "owner" and by_name["bob"]["role"] == "member"
        assert set(by_name["alice"]["user"]) == {"id", "username", "nickname", "avatar", "status"}
        assert set(by_name["alice"]) == {"user", "role", "joined_at", "muted"}

    def test_non_member_is_forbidden(self, client_for, carol, team):
        assert_error(client_for(carol).get(url(team, "/members")), 403, 1005)

    @pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 201}, {"limit": "ten"}, {"after": "abc"}, {"after": -1}])
    def test_bad_paging(self, client_for, alice, team, params):
        assert_error(client_for(alice).get(url(team, "/members"), params), 400, 1001)

    def test_unknown_group(self, client_for, alice):
        assert_error(client_for(alice).get(url(77, "/members")), 404, 1003)


@pytest.mark.django_db
class TestAddRemove:
    def test_owner_adds(self, client_for, alice, carol, make_user, team):
        dave = make_user("dave")
        r = client_for(alice).post(url(team, "/members"), {"user_ids": [str(carol.id), str(dave.id)]}, format="json")
        assert r.status_code == 200, r.content
        assert sorted(r.json()["added_user_ids"]) == sorted([str(carol.id), str(dave.id)])
        assert r.json()["member_count"] == 4
        assert client_for(carol).get(url(team)).status_code == 200

    def test_adding_present_members_adds_nothing(self, client_for, alice, bob, team):
        body = client_for(alice).post(url(team, "/members"), {"user_ids": [str(bob.id)]}, format="json").json()
        assert body == {"added_user_ids": [], "member_count": 2}

    def test_admin_adds(self, client_for, bob, carol, team):
        GroupMember.objects.filter(group=team, user=bob).update(role="admin")
        assert client_for(bob).post(url(team, "/members"), {"user_ids": [str(carol.id)]}, format="json").status_code == 200

    def test_member_cannot_add(self, client_for, bob, carol, team):
        assert_error(client_for(bob).post(url(team, "/members"), {"user_ids": [str(carol.id)]}, format="json"), 403, 1005)
        assert not GroupMember.objects.filter(group=team, user=carol).exists()

    def test_add_unknown_user(self, client_for, alice, team):
        assert_error(client_for(alice).post(url(team, "/members"), {"user_ids": ["424242"]}, format="json"), 404, 1003)

    def test_add_past_max_members(self, client_for, alice, carol, make_user):
        group = create_group(owner_id=alice.id, name="pair", max_members=2)
        ids = [str(carol.id), str(make_user().id)]
        assert_error(client_for(alice).post(url(group, "/members"), {"user_ids": ids}, format="json"), 409, 1007)
        group.refresh_from_db()
        assert group.member_count == 1

    @pytest.mark.parametrize("body", [{}, {"user_ids": []}, {"user_ids": "5"}, {"user_ids": [None]}, {"user_ids": ["1" for _ in range(1001)]}])
    def test_bad_user_ids(self, client_for, alice, team, body):
        assert_error(client_for(alice).post(url(team, "/members"), body, format="json"), 400, 1001)

    @pytest.mark.parametrize("how", ["delete", "post"])
    def test_owner_removes(self, client_for, alice, bob, team, how):
        client = client_for(alice)
        if how == "delete":
            r = client.delete(url(team, f"/members/{bob.id}"))
        else:
            r = client.post(url(team, "/members/remove"), {"user_ids": [str(bob.id)]}, format="json")
        assert r.status_code == 200, r.content
        assert r.json() == {"removed_user_ids": [str(bob.id)], "member_count": 1}
        assert_error(client_for(bob).get(url(team)), 403, 1005)

    def test_member_cannot_remove(self, client_for, alice, bob, team):
        assert_error(client_for(bob).post(url(team, "/members/remove"), {"user_ids": [str(alice.id)]}, format="json"), 403, 1005)

    def test_owner_cannot_be_removed(self, client_for, alice, bob, team):
        GroupMember.objects.filter(group=team, user=bob).update(role="admin")
        assert_error(client_for(bob).post(url(team, "/members/remove"), {"user_ids": [str(alice.id)]}, format="json"), 403, 1005)

    def test_admin_cannot_remove_an_admin(self, client_for, alice, bob, carol, team):
        add_members(group_id=team.id, actor_id=alice.id, user_ids=[carol.id])
        GroupMember.objects.filter(group=team, user_id__in=[bob.id, carol.id]).update(role="admin")
        assert_error(client_for(bob).post(url(team, "/members/remove"), {"user_ids": [str(carol.id)]}, format="json"), 403, 1005)

    def test_removing_a_non_member_removes_nothing(self, client_for, alice, carol, team):
        body = client_for(alice).post(url(team, "/members/remove"), {"user_ids": [str(carol.id)]}, format="json").json()
        assert body == {"removed_user_ids": [], "member_count": 2}

    def test_remove_bad_input(self, client_for, alice, team):
        assert_error(client_for(alice).post(url(team, "/members/remove"), {"user_ids": ["x"]}, format="json"), 400, 1001)
        assert_error(client_for(alice).delete(url(team, "/members/x")), 404, 1003)
        # The list itself cannot be deleted: only one member per DELETE.
        assert client_for(alice).delete(url(team, "/members"), {"user_ids": ["1"]}, format="json").status_code == 405


@pytest.mark.django_db
class TestRoles:
    def test_owner_promotes_and_demotes(self, client_for, alice, bob, carol, team):
        r = client_for(alice).post(url(team, f"/members/{bob.id}/role"), {"role": "admin"}, format="json")
        assert r.status_code == 200, r.content
        assert r.json() == {"user_id": str(bob.id), "role": "admin"}
        # As admin, bob may now add members.
        assert client_for(bob).post(url(team, "/members"), {"user_ids": [str(carol.id)]}, format="json").status_code == 200
        client_for(alice).post(url(team, f"/members/{bob.id}/role"), {"role": "member"}, format="json")
        assert GroupMember.objects.get(group=team, user=bob).role == "member"

    def test_admin_cannot_change_roles(self, client_for, alice, bob, carol, team):
        add_members(group_id=team.id, actor_id=alice.id, user_ids=[carol.id])
        GroupMember.objects.filter(group=team, user=bob).update(role="admin")
        assert_error(client_for(bob).post(url(team, f"/members/{carol.id}/role"), {"role": "admin"}, format="json"), 403, 1005)

    @pytest.mark.parametrize("role", ["owner", "king", "", None])
    def test_bad_role(self, client_for, alice, bob, team, role):
        assert_error(client_for(alice).post(url(team, f"/members/{bob.id}/role"), {"role": role}, format="json"), 400, 1001)

    def test_owner_role_is_not_changed_here(self, client_for, alice, team):
        assert_error(client_for(alice).post(url(team, f"/members/{alice.id}/role"), {"role": "member"}, format="json"), 403, 1005)

    def test_target_not_a_member(self, client_for, alice, carol, team):
        assert_error(client_for(alice).post(url(team, f"/members/{carol.id}/role"), {"role": "admin"}, format="json"), 404, 1003)

    def test_malformed_user_id(self, client_for, alice, team):
        assert_error(client_for(alice).post(url(team, "/members/bob/role"), {"role": "admin"}, format="json"), 404, 1003)
