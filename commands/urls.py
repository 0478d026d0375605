from django.urls import path

from commands import views

app_name = "commands"

urlpatterns = [path("", views.index, name="index")]
