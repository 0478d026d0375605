from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
@login_required
def index(request):
    return render(request, "placeholder.html", {"title": "APKs", "section": "apks"})


@require_GET
@login_required
def release_detail(request, release_id):
    return render(request, "placeholder.html", {"title": "APK", "section": "apks"})
