import logging

from django import forms
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, UserCreationForm
from django.db import transaction

from accounts.tasks import send_password_reset_email
from mdm.formfields import bounded_number

User = get_user_model()
logger = logging.getLogger(__name__)

PENDING_MESSAGE = "Your account is waiting for an admin's approval. You can sign in once it is approved."


class LoginForm(AuthenticationForm):
    """Django's sign-in form; a registered account that is still waiting for approval is told so
    (only to someone who gave its right password, and never while locked out)."""

    error_messages = {**AuthenticationForm.error_messages, "pending": PENDING_MESSAGE}

    def clean(self):
        try:
            return super().clean()
        except forms.ValidationError:
            if not getattr(self.request, "axes_locked_out", False):
                self._raise_if_pending()
            raise

    def _raise_if_pending(self):
        username, password = self.cleaned_data.get("username"), self.cleaned_data.get("password")
        if not username or not password:
            return
        user = User._default_manager.filter(**{User.USERNAME_FIELD: username}).first()
        if user is not None and user.is_pending and user.check_password(password):
            raise forms.ValidationError(self.error_messages["pending"], code="pending")


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's form, with the mail sent by a Celery worker (accounts.tasks), queued on commit: a
    slow or broken SMTP server neither holds the request nor tells, by the time the answer takes,
    whether an account uses the address. The worker makes the link itself, so the reset token
    never waits in the broker."""

    def save(self, **kwargs):
        email = self.cleaned_data["email"]
        for user in self.get_users(email):
            transaction.on_commit(lambda user_id=str(user.pk): _queue_reset_mail(user_id=user_id, email=email))


def _queue_reset_mail(*, user_id: str, email: str) -> None:
    try:
        send_password_reset_email.delay(user_id=user_id, email=email)
    except Exception:  # the broker is down: logged, and answered like an unknown address (no 500)
        logger.exception("Could not queue the password reset mail of user %s", user_id)


class RegistrationForm(UserCreationForm):
    email = forms.EmailField(required=True, help_text="Used for password resets and alerts.")

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")

    def clean_email(self):
        email = self.cleaned_data["email"].lower()
        if User.objects.filter(email__iexact=email).exists():
            raise forms.ValidationError("An account with this email already exists.")
        return email


class ProfileForm(forms.ModelForm):
    class Meta:
        model = User
        fields = ("first_name", "last_name", "email")

    def clean_email(self):
        email = self.cleaned_data["email"].lower()
        if email and User.objects.filter(email__iexact=email).exclude(pk=self.instance.pk).exists():
            raise forms.ValidationError("Another account uses this email.")
        return email


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=User.Role.choices)


class ActiveForm(forms.Form):
    active = forms.TypedChoiceField(choices=[("true", "active"), ("false", "inactive")], coerce=lambda v: v == "true")


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="Who uses it, e.g. “CI release pipeline”.")
    scopes = forms.MultipleChoiceField(choices=[("apk:upload", "Upload APKs (apk:upload)"), ("apk:read", "Read APK releases (apk:read)")],
                                       widget=forms.CheckboxSelectMultiple, initial=["apk:upload"])
    expires_in_days = bounded_number(1, 3650, unit="days", required=False, label="Expires after (days)",
                                     help_text="Empty: until revoked.")

    def expires_at(self):
        from datetime import timedelta

        from django.utils import timezone

        days = self.cleaned_data.get("expires_in_days")
        return timezone.now() + timedelta(days=days) if days else None
