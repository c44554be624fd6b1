"""Groups REST routes; included under /api/v1/ by gochat_site.urls."""
from django.urls import path

from gochat_site.id_params import register_id_converter
from groups import views

register_id_converter()

urlpatterns = [
    path("groups", views.GroupListView.as_view(), name="groups"),
    # <id:...> is gochat_site.id_params.IdConverter: only
    # an id in range matches, so "create" and any malformed id never reach a view as one.
    path("groups/create", views.GroupCreateView.as_view(), name="groups-create"),
    path("groups/<id:group_id>", views.GroupDetailView.as_view(), name="group-detail"),
    path("groups/<id:group_id>/join", views.GroupJoinView.as_view(), name="group-join"),
    path("groups/<id:group_id>/leave", views.GroupLeaveView.as_view(), name="group-leave"),
    path("groups/<id:group_id>/members", views.GroupMembersView.as_view(), name="group-members"),
    path("groups/<id:group_id>/members/<id:user_id>", views.GroupMemberView.as_view(), name="group-member"),
    path("groups/<id:group_id>/members/remove", views.GroupMembersRemoveView.as_view(), name="group-members-remove"),
    path("groups/<id:group_id>/members/<id:user_id>/role", views.GroupMemberRoleView.as_view(), name="group-member-role"),
]
