from django.urls import path

from devices import views

app_name = "devices"

urlpatterns = [
    path("", views.index, name="index"),
    path("bulk-delete/", views.bulk_delete, name="bulk_delete"),
    path("retired/", views.retired, name="retired"),
    path("groups/", views.groups, name="groups"),
    path("<uuid:device_id>/", views.detail, name="detail"),
    path("<uuid:device_id>/delete/", views.delete, name="delete"),
    path("<uuid:device_id>/restore/", views.restore, name="restore"),
]
