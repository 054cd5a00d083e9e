"""
Django settings for the Channels tutorial chat ("mysite"), as an external
server for the benchmark: `django-admin startproject mysite` plus the
tutorial's additions (daphne, channels, the chat app, ASGI_APPLICATION,
CHANNEL_LAYERS), with DEBUG off and only loopback hosts allowed.

The channel layer comes from the environment:

- by default (the benchmark), the tutorial's InMemoryChannelLayer with its
  defaults (capacity 100 messages per channel, expiry 60 s): a consumer whose
  channel already holds 100 undelivered messages silently loses the next
  ones;
- with CHAT_REDIS_URLS set (comma-separated redis:// URLs, one per shard, in
  shard order), channels_redis' RedisPubSubChannelLayer on those Redis
  servers, with the prefix CHAT_LAYER_PREFIX (default "asgi"), so that this
  process shares its rooms with every other process on the same Redis
  servers, prefix and shard order (our servers' --layer redis included).

See ../README.md.
"""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# Only ever served on 127.0.0.1 for a benchmark; run.sh may pass a fresh one.
SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "django-insecure-loopback-benchmark-only-not-a-secret"
)

DEBUG = False

ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = [
    "daphne",
    "channels",
    "chat",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "mysite.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

WSGI_APPLICATION = "mysite.wsgi.application"

# Daphne / Channels
ASGI_APPLICATION = "mysite.asgi.application"


def channel_layer_from_env():
    """The CHANNEL_LAYERS["default"] entry chosen by the environment (see the
    module's doc)."""
    urls = os.environ.get("CHAT_REDIS_URLS")
    if urls is None:
        return {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    hosts = [url.strip() for url in urls.split(",") if url.strip()]
    if not hosts:
        raise ImproperlyConfigured(
            "CHAT_REDIS_URLS is set but holds no URL "
            "(expected comma-separated redis://HOST:PORT URLs)"
        )
    for url in hosts:
        if not url.startswith(("redis://", "rediss://", "unix://")):
            raise ImproperlyConfigured(
                f"CHAT_REDIS_URLS: {url!r} is not a redis:// URL"
            )
    return {
        "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
        "CONFIG": {
            # The order is the shard order: every process sharing the rooms
            # must list the same servers in the same order.
            "hosts": hosts,
            "prefix": os.environ.get("CHAT_LAYER_PREFIX", "asgi"),
        },
    }


CHANNEL_LAYERS = {"default": channel_layer_from_env()}

# The default sqlite database. Nothing in the chat queries it (a WebSocket
# without a session cookie never reaches the session table); run.sh points
# it under target/ so that no stray file appears in the source tree.
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("DJANGO_SQLITE_PATH", BASE_DIR / "db.sqlite3"),
    }
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
