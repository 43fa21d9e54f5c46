"""A small Django project whose app receives django-anymail's tracking signal (test_django_bridge)."""
