"""API tokens: simplejwt's, bound to the user's credential stamp (User.credential_stamp).

Every token carries the "jwt" stamp of its user as the `cred` claim. The stamp is derived from
the password hash and the credential version, so a password change by any path (console,
reset link, Django admin, management command) or a deactivation changes it, and every token
issued before stops working at its next use: access tokens (checked by JWTAuthentication, on the
user row it loads anyway: no extra query) and refresh tokens (checked on refresh). Refresh
tokens are also single-use: refreshing blacklists the old one (ROTATE_REFRESH_TOKENS and
BLACKLIST_AFTER_ROTATION)."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.crypto import constant_time_compare
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from rest_framework import serializers
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt import authentication, tokens
from rest_framework_simplejwt import serializers as jwt_serializers
from rest_framework_simplejwt.settings import api_settings

CLAIM = "cred"
REVOKED = "This token is no longer valid: the password was changed or the account deactivated. Sign in again."


def stamp_for(user) -> str:
    return user.credential_stamp("jwt")[:32]


def stamp_matches(user, token) -> bool:
    return constant_time_compare(str(token.get(CLAIM, "")), stamp_for(user))


class RefreshToken(tokens.RefreshToken):
    """simplejwt's refresh token (outstanding/blacklist aware) with the stamp; the access tokens
    made from it copy the claim."""

    @classmethod
    def for_user(cls, user):
        token = super().for_user(user)
        token[CLAIM] = stamp_for(user)
        return token


def token_pair_for(user) -> dict:
    refresh = RefreshToken.for_user(user)
    return {"refresh": str(refresh), "access": str(refresh.access_token)}


class JWTAuthentication(authentication.JWTAuthentication):
    def get_user(self, validated_token):
        user = super().get_user(validated_token)  # also refuses a missing or inactive user
        if not stamp_matches(user, validated_token):
            raise AuthenticationFailed(REVOKED, code="token_not_valid")
        return user


class TokenObtainSerializer(jwt_serializers.TokenObtainPairSerializer):
    token_class = RefreshToken

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Bounded before anything reaches authenticate(): django-axes stores the username of a
        # failed attempt in a 255-character column. DRF's CharField already refuses NUL and
        # lone surrogates, which PostgreSQL cannot store or compare.
        username_max = get_user_model()._meta.get_field(self.username_field).max_length
        self.fields[self.username_field] = serializers.CharField(write_only=True, max_length=username_max)
        self.fields["password"] = jwt_serializers.PasswordField(max_length=4096, trim_whitespace=False)


class TokenRefreshSerializer(jwt_serializers.TokenRefreshSerializer):
    token_class = RefreshToken

    def validate(self, attrs):
        refresh = self.token_class(attrs["refresh"])  # signature, expiry, blacklist
        user_id = refresh.payload.get(api_settings.USER_ID_CLAIM)
        try:
            user = get_user_model().objects.filter(**{api_settings.USER_ID_FIELD: user_id}).first()
        except (DjangoValidationError, ValueError):
            user = None
        if user is None or not user.is_active or not stamp_matches(user, refresh):
            raise AuthenticationFailed(REVOKED, code="token_not_valid")
        return super().validate(attrs)  # blacklists this refresh token, issues the next


class JWTScheme(SimpleJWTScheme):
    """The OpenAPI security scheme of simplejwt's authentication, for this subclass."""

    target_class = "accounts.tokens.JWTAuthentication"
