"""URL configuration for mysite: the tutorial's chat pages, and the admin."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("chat/", include("chat.urls")),
    path("admin/", admin.site.urls),
]
