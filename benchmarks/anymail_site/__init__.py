"""The anchor for the gateway's second comparison: django-anymail's own Postmark tracking view.

A minimal Django project (no database, no middleware, DEBUG off) served by
gunicorn: ``gunicorn benchmarks.anymail_site.wsgi``. Basic auth is anymail's
WEBHOOK_SECRET, the URL has the gateway's shape, and a no-op receiver is
connected to anymail's ``tracking`` signal, so every request is authenticated,
parsed into an AnymailTrackingEvent and dispatched, as in a real project.
"""
