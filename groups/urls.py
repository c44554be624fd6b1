"""Groups REST routes; included under /api/v1/ by gochat_site.urls."""
from django.urls import path

from groups import views

urlpatterns = [
    path("groups", views.GroupListView.as_view(), name="groups"),
    # Before the detail route, which would otherwise read "create" as an id.
    path("groups/create", views.GroupCreateView.as_view(), name="groups-create"),
    path("groups/<str:group_id>", views.GroupDetailView.as_view(), name="group-detail"),
    path("groups/<str:group_id>/join", views.GroupJoinView.as_view(), name="group-join"),
    path("groups/<str:group_id>/leave", views.GroupLeaveView.as_view(), name="group-leave"),
    path("groups/<str:group_id>/members", views.GroupMembersView.as_view(), name="group-members"),
    path("groups/<str:group_id>/members/remove", views.GroupMembersRemoveView.as_view(), name="group-members-remove"),
    path("groups/<str:group_id>/members/<str:user_id>/role", views.GroupMemberRoleView.as_view(), name="group-member-role"),
]
