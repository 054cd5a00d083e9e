"""
Django settings for the Channels tutorial chat ("mysite"), as an external
server for the benchmark: `django-admin startproject mysite` plus the
tutorial's additions (daphne, channels, the chat app, ASGI_APPLICATION,
CHANNEL_LAYERS), with DEBUG off and only loopback hosts allowed.

The channel layer is the tutorial's InMemoryChannelLayer with its defaults
(capacity 100 messages per channel, expiry 60 s): a consumer whose channel
already holds 100 undelivered messages silently loses the next ones. See
../README.md.
"""

import os
from pathlib import Path

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

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels.layers.InMemoryChannelLayer",
    },
}

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
