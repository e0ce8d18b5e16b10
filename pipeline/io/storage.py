"""All storage goes through here: fsspec URLs, storage options, path joins, redaction.

`s3://` and local paths run the same code. S3 endpoint and credentials come from the
standard AWS variables (botocore reads them) or from `storage.options` in config; the
values of secret options and variables are registered with `redact` so that no log line,
Parquet cell or MLflow param can carry them.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping
from typing import Any

import fsspec
from fsspec.core import url_to_fs

_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID")
_SECRET_OPTION = re.compile(r"secret|token|password|key$", re.IGNORECASE)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-z0-9+.-]+://)[^/@\s]+@", re.IGNORECASE)


# Secret option values seen by this process (driver or worker): redacted wherever text leaves.
_REGISTERED: set[str] = set()


def normalize_url(url: str) -> str:
    """Local paths become absolute (workers may run in another cwd); URLs are kept."""
    if "://" in url:
        return url.rstrip("/") if not url.endswith("://") else url
    return os.path.abspath(os.path.expanduser(url))


# Object stores fail a share of requests under load (500, 503 SlowDown, reset connections).
# botocore's default (legacy mode, 5 attempts) leaves about one request in 10^5 failed at a
# 10% fault rate: thousands of failed rows over millions of images. Standard mode retries
# every transient error with jittered exponential backoff (capped at 20 s). Used unless
# AWS_MAX_ATTEMPTS / AWS_RETRY_MODE or storage.options config_kwargs.retries say otherwise.
S3_RETRIES = {"max_attempts": 10, "mode": "standard"}


def _with_retries(opts: dict[str, Any]) -> dict[str, Any]:
    config = dict(opts.get("config_kwargs") or {})
    if "retries" in config or os.environ.get("AWS_MAX_ATTEMPTS") or os.environ.get("AWS_RETRY_MODE"):
        return opts
    return {**opts, "config_kwargs": {**config, "retries": dict(S3_RETRIES)}}


def storage_options(url: str, options: Mapping[str, Any] | None) -> dict[str, Any]:
    """fsspec options for `url`: config options, plus the S3 endpoint from the environment
    and retries with backoff (`S3_RETRIES`)."""
    opts = dict(options or {})
    if url.startswith(("s3://", "s3a://")) and "endpoint_url" not in opts:
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            opts["endpoint_url"] = endpoint
    if url.startswith(("s3://", "s3a://")):
        opts = _with_retries(opts)
    else:
        # Options such as endpoint_url only mean something to s3fs.
        opts = {k: v for k, v in opts.items() if k in ("auto_mkdir",)}
    return opts


def filesystem(url: str, options: Mapping[str, Any] | None = None) -> tuple[fsspec.AbstractFileSystem, str]:
    """(filesystem, path within it) for a URL; fsspec caches the filesystem instances."""
    _REGISTERED.update(secret_values(options, include_env=False))
    return url_to_fs(url, **storage_options(url, options))


def join(base: str, *parts: str) -> str:
    """Join URL path parts with '/', never letting a part climb above `base`."""
    for part in parts:
        clean = posixpath.normpath("/" + part).lstrip("/")
        if clean in ("", "."):
            continue
        base = base.rstrip("/") + "/" + clean
    return base


def is_within(url: str, prefix: str) -> bool:
    """True when `url` lies at or below `prefix` (both normalised)."""
    url, prefix = url.rstrip("/"), prefix.rstrip("/")
    return url == prefix or url.startswith(prefix + "/")


def secret_values(options: Mapping[str, Any] | None = None, include_env: bool = True) -> list[str]:
    """Every secret string that must never be printed: AWS variables, secret options and
    the secret options this process has used."""
    values = [os.environ[name] for name in _SECRET_ENV if include_env and os.environ.get(name)]
    for key, value in (options or {}).items():
        if isinstance(value, str) and _SECRET_OPTION.search(key):
            values.append(value)
        elif isinstance(value, Mapping):
            values.extend(secret_values(value, include_env=False))
    if include_env:
        values.extend(_REGISTERED)
    return [v for v in values if len(v) >= 4]


def redact(text: str, secrets: list[str] | None = None) -> str:
    """`text` with credentials in URLs and every known secret value replaced by ***."""
    text = _URL_CREDENTIALS.sub(r"\g<scheme>***@", text)
    for value in secrets if secrets is not None else secret_values():
        text = text.replace(value, "***")
    return text
