"""Django settings: just enough for anymail's webhook view, nothing a request would not need."""

from benchmarks.payloads import PASSWORD, USER

SECRET_KEY = "benchmark-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "benchmarks.anymail_site.urls"
WSGI_APPLICATION = "benchmarks.anymail_site.wsgi.application"
INSTALLED_APPS = ["anymail"]
# anymail's views are csrf-exempt and need no session or user: no middleware is the cheapest
# setup a project could serve them with, which favours the anchor.
MIDDLEWARE: list[str] = []
DATABASES: dict = {}
USE_TZ = True
ANYMAIL = {"WEBHOOK_SECRET": f"{USER}:{PASSWORD}"}
LOGGING = {"version": 1, "disable_existing_loggers": False}
