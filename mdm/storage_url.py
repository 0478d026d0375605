"""STORAGE_URL -> Django's STORAGES["default"] (django-storages for S3). No Django import:
settings use it.

    file:///var/lib/mdm/media
    s3://bucket/prefix?endpoint_url=https://minio.example:9000&region=eu-west-1&addressing_style=path

An S3 store's credentials never go in the URL (it is logged and shown): they come from
AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or from files named by AWS_ACCESS_KEY_ID_FILE /
AWS_SECRET_ACCESS_KEY_FILE (docker secrets), or, with neither, from boto3's own chain (an
instance role, ~/.aws/credentials)."""

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

S3_OPTIONS = {"endpoint_url", "region", "addressing_style"}


@dataclass(frozen=True)
class StorageConfig:
    django_storage: dict
    media_root: Path | None  # the filesystem's root, or None for an object store
    kind: str  # "file" or "s3"


def _secret(environ, name: str) -> str | None:
    if environ.get(name):
        return environ[name]
    path = environ.get(f"{name}_FILE")
    if not path:
        return None
    try:
        return Path(path).read_text().strip()
    except OSError as exc:
        raise ValueError(f"{name}_FILE names {path!r}, which cannot be read ({exc.strerror})") from None


def parse_storage_url(url: str, environ) -> StorageConfig:
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError(f"a file URL needs an absolute path (file:///var/lib/mdm/media), got {url!r}")
        root = Path(unquote(parts.path))
        return StorageConfig({"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(root)}}, root, "file")
    if parts.scheme != "s3":
        raise ValueError(f"file:// or s3:// expected, got {url!r}")
    if not parts.hostname or parts.username or parts.password:
        raise ValueError("an S3 URL is s3://bucket/prefix?endpoint_url=...&region=... (credentials come from AWS_* variables, never the URL)")
    query = parse_qs(parts.query, keep_blank_values=True)
    unknown = set(query) - S3_OPTIONS
    if unknown:
        raise ValueError(f"unknown S3 option(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(S3_OPTIONS))}")
    options = {
        "bucket_name": parts.hostname,
        "location": unquote(parts.path).strip("/"),
        # Objects are private: devices get a pre-signed URL (apks.storage), never a public one.
        "default_acl": None,
        "querystring_auth": True,
        "file_overwrite": False,
        "signature_version": "s3v4",
    }
    if "endpoint_url" in query:
        endpoint = query["endpoint_url"][-1]
        if urlsplit(endpoint).scheme not in ("http", "https"):
            raise ValueError(f"endpoint_url must be an http(s) URL, got {endpoint!r}")
        options["endpoint_url"] = endpoint
    if "region" in query:
        options["region_name"] = query["region"][-1]
    if "addressing_style" in query:
        style = query["addressing_style"][-1]
        if style not in ("path", "virtual", "auto"):
            raise ValueError("addressing_style is path, virtual or auto")
        options["addressing_style"] = style
    access, secret = _secret(environ, "AWS_ACCESS_KEY_ID"), _secret(environ, "AWS_SECRET_ACCESS_KEY")
    if bool(access) != bool(secret):
        raise ValueError("set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or their _FILE forms), or neither")
    if access:
        options["access_key"], options["secret_key"] = access, secret
    return StorageConfig({"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}, None, "s3")
