from django.apps import AppConfig


class TrackerConfig(AppConfig):
    name = "tests.support.django_project.tracker"

    def ready(self) -> None:
        from . import receivers  # noqa: F401 - connects the receivers
