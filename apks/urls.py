from django.urls import path

from apks import views

app_name = "apks"

urlpatterns = [
    path("", views.index, name="index"),
    path("<uuid:release_id>/", views.release_detail, name="release"),
    path("<uuid:release_id>/agent/", views.mark_agent, name="mark_agent"),
    # Public on purpose (provisioning devices have no credentials): only the marked agent release.
    path("agent/<uuid:release_id>.apk", views.agent_download, name="agent_download"),
]
