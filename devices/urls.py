from django.urls import path

from devices import views

app_name = "devices"

urlpatterns = [path("", views.index, name="index")]
