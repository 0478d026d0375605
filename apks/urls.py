from django.urls import path

from apks import views

app_name = "apks"

urlpatterns = [
    path("", views.index, name="index"),
    path("<uuid:release_id>/", views.release_detail, name="release"),
    path("<uuid:release_id>/agent/", views.mark_agent, name="mark_agent"),
    path("<uuid:release_id>/deploy/", views.deploy_release, name="deploy"),
    path("rollouts/", views.rollout_list, name="rollouts"),
    path("rollouts/<uuid:rollout_id>/", views.rollout_detail, name="rollout"),
    path("rollouts/<uuid:rollout_id>/pause/", views.rollout_action, {"verb": "pause"}, name="rollout_pause"),
    path("rollouts/<uuid:rollout_id>/resume/", views.rollout_action, {"verb": "resume"}, name="rollout_resume"),
    path("rollouts/<uuid:rollout_id>/retry-failed/", views.rollout_action, {"verb": "retry-failed"}, name="rollout_retry"),
    path("rollouts/<uuid:rollout_id>/rollback/", views.rollout_rollback, name="rollout_rollback"),
    # Public on purpose (provisioning devices have no credentials): only the marked agent release.
    path("agent/<uuid:release_id>.apk", views.agent_download, name="agent_download"),
]
