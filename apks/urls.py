from django.urls import path

from apks import views

app_name = "apks"

urlpatterns = [
    path("", views.index, name="index"),
    path("<uuid:release_id>/", views.release_detail, name="release"),
]
