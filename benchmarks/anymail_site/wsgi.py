"""The WSGI application gunicorn serves, with a no-op receiver on anymail's tracking signal."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.anymail_site.settings")

from anymail.signals import tracking  # noqa: E402  (settings first)
from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()


def handle_tracking(sender, event, esp_name, **kwargs) -> None:
    """Receives every event, does nothing: the view's own work is what is measured."""


tracking.connect(handle_tracking, weak=False)
