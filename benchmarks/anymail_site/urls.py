"""The gateway's URL shape, routed to anymail's Postmark tracking view."""

from anymail.webhooks.postmark import PostmarkTrackingWebhookView
from django.urls import path

from benchmarks.payloads import WEBHOOK_PATH

urlpatterns = [
    path(WEBHOOK_PATH.lstrip("/"), PostmarkTrackingWebhookView.as_view(), name="postmark_tracking_webhook"),
]
