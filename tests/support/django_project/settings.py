"""Settings of the test Django project, as `espstream consume --django-settings` loads them."""

SECRET_KEY = "espstream-django-bridge-tests"
USE_TZ = True
INSTALLED_APPS = ["anymail", "tests.support.django_project.tracker"]
