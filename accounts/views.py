from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse, reverse_lazy
from django.views.decorators.http import require_POST

from accounts import limits, services
from accounts.forms import ActiveForm, LoginForm, PasswordResetForm, ProfileForm, RegistrationForm, RoleForm
from accounts.models import User
from accounts.permissions import role_required
from mdm.audit import client_ip
from mdm.metrics import LOGINS


def _limited(request, template: str, context: dict, seconds: int) -> HttpResponse:
    """The form again, with the limit's message, as 429 with Retry-After."""
    response = render(request, template, {**context, "limit_message": limits.rate_limited_message(seconds)}, status=429)
    response["Retry-After"] = str(seconds)
    return response


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    form_class = LoginForm
    redirect_authenticated_user = True

    def get_context_data(self, **kwargs):
        return super().get_context_data(registration_open=settings.REGISTRATION_OPEN, **kwargs)

    def form_valid(self, form):
        LOGINS.labels("ok").inc()
        return super().form_valid(form)

    def form_invalid(self, form):
        # A locked-out attempt is answered by AxesMiddleware (accounts.limits.lockout_response).
        LOGINS.labels("failed").inc()
        return super().form_invalid(form)


def register(request):
    if not settings.REGISTRATION_OPEN:
        raise Http404("Registration is closed.")
    form = RegistrationForm(request.POST or None)
    if request.method == "POST":
        wait = limits.over_rate(request, group="registration", rate=settings.REGISTRATION_RATE)
        if wait:
            return _limited(request, "accounts/register.html", {"form": RegistrationForm()}, wait)
        if form.is_valid():
            services.register_user(
                username=form.cleaned_data["username"],
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password1"],
                ip=client_ip(request),
            )
            return redirect("accounts:registration_pending")
    return render(request, "accounts/register.html", {"form": form})


def registration_pending(request):
    """The one page a registered account sees until an admin approves it."""
    return render(request, "accounts/registration_pending.html")


def _to_page(request, url: str) -> HttpResponse:
    """After a console form is saved: the page again (HX-Redirect for HTMX, a redirect otherwise)."""
    if request.htmx:
        response = HttpResponse(status=204)
        response["HX-Redirect"] = str(url)
        return response
    return redirect(url)


@login_required
def profile(request):
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST":
        if form.is_valid():
            # ModelForm validation assigns onto the instance; the service does the save and audit.
            services.update_profile(user=User.objects.get(pk=request.user.pk), ip=client_ip(request), **form.cleaned_data)
            messages.success(request, "Profile saved.")
            return _to_page(request, reverse("accounts:profile"))
        if request.htmx:
            return render(request, "accounts/_profile_form.html", {"form": form}, status=422)
    return render(request, "accounts/profile.html", {"form": form}, status=422 if form.errors else 200)


class PasswordChangeView(auth_views.PasswordChangeView):
    """The form swaps in place with its errors (422) when sent by HTMX, like every console form."""

    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("accounts:profile")

    def form_valid(self, form):
        response = super().form_valid(form)
        services.record_password_change(user=self.request.user, how="change", ip=client_ip(self.request))
        messages.success(self.request, "Password changed.")
        return _to_page(self.request, self.success_url) if self.request.htmx else response

    def form_invalid(self, form):
        if self.request.htmx:
            return render(self.request, "accounts/_password_form.html", {"form": form}, status=422)
        return self.render_to_response(self.get_context_data(form=form), status=422)


def _reset_email(group, request) -> str:
    return request.POST.get("email", "").strip().lower()[:254]


class PasswordResetView(auth_views.PasswordResetView):
    """Limited per client IP and per address asked for, so no one can mail-bomb an inbox (the
    answer is the same whether or not an account uses the address). The mail goes through Celery
    (accounts.forms.PasswordResetForm, accounts.tasks.send_password_reset_email)."""

    template_name = "accounts/password_reset.html"
    form_class = PasswordResetForm
    success_url = reverse_lazy("accounts:password_reset_done")

    def post(self, request, *args, **kwargs):
        rate = settings.PASSWORD_RESET_RATE
        wait = limits.over_rate(request, group="password-reset", rate=rate) or limits.over_rate(
            request, group="password-reset-email", rate=rate, key=_reset_email
        )
        if wait:
            return _limited(request, self.template_name, {"form": self.form_class()}, wait)
        return super().post(request, *args, **kwargs)


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")

    def form_valid(self, form):
        response = super().form_valid(form)
        services.record_password_change(user=form.user, how="reset", ip=client_ip(self.request))
        return response


def _user_row(request, user, status=200):
    context = {"u": user, "roles": User.Role.choices, "default_role": settings.REGISTRATION_DEFAULT_ROLE}
    return render(request, "accounts/_user_row.html", context, status=status)


@role_required("admin")
def user_list(request):
    users = User.objects.order_by("-is_active", "username")
    pending = [u for u in users if u.is_pending]
    context = {
        "users": [u for u in users if not u.is_pending],
        "pending": pending,
        "roles": User.Role.choices,
        "default_role": settings.REGISTRATION_DEFAULT_ROLE,
        "section": "users",
    }
    return render(request, "accounts/user_list.html", context)


@require_POST
@role_required("admin")
def user_set_role(request, user_id):
    user = get_object_or_404(User, pk=user_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return HttpResponse("Unknown role.", status=400)
    services.set_role(actor=request.user, user=user, role=form.cleaned_data["role"], ip=client_ip(request))
    return _user_row(request, user)


@require_POST
@role_required("admin")
def user_approve(request, user_id):
    user = get_object_or_404(User, pk=user_id)
    form = RoleForm(request.POST)
    if not form.is_valid():
        return HttpResponse("Unknown role.", status=400)
    try:
        user = services.approve_user(actor=request.user, user=user, role=form.cleaned_data["role"], ip=client_ip(request))
    except services.AccountStateError as exc:
        return HttpResponse(str(exc), status=409, content_type="text/plain; charset=utf-8")
    return _user_row(request, user)


@require_POST
@role_required("admin")
def user_reject(request, user_id):
    user = get_object_or_404(User, pk=user_id)
    try:
        services.reject_registration(actor=request.user, user=user, ip=client_ip(request))
    except services.AccountStateError as exc:
        return HttpResponse(str(exc), status=409, content_type="text/plain; charset=utf-8")
    return HttpResponse("")  # the row goes (hx-swap outerHTML with nothing)


@require_POST
@role_required("admin")
def user_set_active(request, user_id):
    user = get_object_or_404(User, pk=user_id)
    form = ActiveForm(request.POST)
    if not form.is_valid():
        return HttpResponse("Say active=true or active=false.", status=400)
    try:
        user = services.set_active(actor=request.user, user=user, active=form.cleaned_data["active"], ip=client_ip(request))
    except services.AccountStateError as exc:
        return HttpResponse(str(exc), status=409, content_type="text/plain; charset=utf-8")
    return _user_row(request, user)


# --- API keys (accounts.apikeys) ------------------------------------------------------------
@role_required("admin")
def api_keys(request):
    """The list, and (POST) a new key: answered with the key shown once above the list."""
    from accounts.forms import ApiKeyForm
    from accounts.models import ApiKey

    form = ApiKeyForm(request.POST or None)
    created = None
    if request.method == "POST":
        if form.is_valid():
            created = services.create_api_key(actor=request.user, name=form.cleaned_data["name"], scopes=form.cleaned_data["scopes"],
                                              expires_at=form.expires_at(), ip=client_ip(request))
            form = ApiKeyForm()
    keys = ApiKey.objects.select_related("created_by").order_by("-created_at")
    context = {"form": form, "keys": keys, "created": created, "section": "api-keys"}
    template = "accounts/_api_keys.html" if request.htmx and request.method == "POST" else "accounts/api_keys.html"
    return render(request, template, context, status=422 if form.errors else 200)


@require_POST
@role_required("admin")
def api_key_revoke(request, key_id):
    from accounts.models import ApiKey

    key = services.revoke_api_key(actor=request.user, key=get_object_or_404(ApiKey, pk=key_id), ip=client_ip(request))
    return render(request, "accounts/_api_key_row.html", {"k": key})
