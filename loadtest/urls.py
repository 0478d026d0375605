from django.urls import path

from loadtest.views import naive_heartbeat

# Routed under bench/ only when BENCH_NAIVE_VIEW is set (mdm/urls.py).
urlpatterns = [path("naive-heartbeat", naive_heartbeat)]
