from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_POST

from accounts import services
from accounts.forms import ProfileForm, RegistrationForm, RoleForm
from accounts.models import User
from accounts.permissions import role_required
from mdm.audit import client_ip
from mdm.metrics import LOGINS


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form):
        LOGINS.labels("ok").inc()
        return super().form_valid(form)

    def form_invalid(self, form):
        LOGINS.labels("failed").inc()
        return super().form_invalid(form)


def register(request):
    if not settings.REGISTRATION_OPEN:
        raise Http404("Registration is closed.")
    form = RegistrationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = services.register_user(
            username=form.cleaned_data["username"],
            email=form.cleaned_data["email"],
            password=form.cleaned_data["password1"],
            ip=client_ip(request),
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.info(request, f"Welcome. Your account starts as {user.get_role_display()}; an admin can promote it.")
        return redirect("dashboard")
    return render(request, "accounts/register.html", {"form": form})


@login_required
def profile(request):
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        # ModelForm validation assigns onto the instance; the service does the save and audit.
        services.update_profile(user=User.objects.get(pk=request.user.pk), ip=client_ip(request), **form.cleaned_data)
        messages.success(request, "Profile saved.")
        return redirect("accounts:profile")
    return render(request, "accounts/profile.html", {"form": form})


class PasswordChangeView(auth_views.PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:profile")

    def form_valid(self, form):
        response = super().form_valid(form)
        services.record_password_change(user=self.request.user, how="change", ip=client_ip(self.request))
        messages.success(self.request, "Password changed.")
        return response


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "accounts/password_reset.html"
    email_template_name = "accounts/password_reset_email.txt"
    subject_template_name = "accounts/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")

    @property
    def extra_email_context(self):
        return {"base_url": settings.PUBLIC_BASE_URL}


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        services.record_password_change(user=form.user, how="reset", ip=client_ip(self.request))
        return response


@role_required("admin")
def user_list(request):
    users = User.objects.order_by("username")
    return render(request, "accounts/user_list.html", {"users": users, "roles": User.Role.choices})


@require_POST
@role_required("admin")
def user_set_role(request, user_id):
    user = get_object_or_404(User, pk=user_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return HttpResponse("Unknown role.", status=400)
    services.set_role(actor=request.user, user=user, role=form.cleaned_data["role"], ip=client_ip(request))
    return render(request, "accounts/_user_row.html", {"u": user, "roles": User.Role.choices})
