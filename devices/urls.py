from django.urls import path

from devices import views

app_name = "devices"

urlpatterns = [
    path("", views.index, name="index"),
    path("bulk-delete/", views.bulk_delete, name="bulk_delete"),
    path("bulk/group/", views.bulk_group, name="bulk_group"),
    path("bulk/tags/add/", views.bulk_tag, {"op": "add"}, name="bulk_tag_add"),
    path("bulk/tags/remove/", views.bulk_tag, {"op": "remove"}, name="bulk_tag_remove"),
    path("bulk/command/", views.bulk_command, name="bulk_command"),
    path("retired/", views.retired, name="retired"),
    path("groups/", views.groups, name="groups"),
    path("<uuid:device_id>/", views.detail, name="detail"),
    path("<uuid:device_id>/delete/", views.delete, name="delete"),
    path("<uuid:device_id>/restore/", views.restore, name="restore"),
]
