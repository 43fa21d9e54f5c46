"""The ESPs espstream receives webhooks from: one row per ESP, read by the gateway, the normalizer and the tests."""

from typing import NamedTuple


class Esp(NamedTuple):
    # The URL path segment, the parser's module name (normalizer/esps/<slug>.py) and, for a signed
    # ESP, its verifier's (gateway/signatures/<slug>.py).
    slug: str
    # anymail's esp_name, carried by every event.
    name: str
    # django-anymail's tracking webhook view, the parity oracle: its dotted path under anymail.webhooks
    # (anymail is never imported here).
    anymail_view: str
    # The gateway settings its signature check is built from (ESPSTREAM_<NAME>), in the order its
    # verifier takes them; the first one set turns the check on. Empty: basic auth alone.
    signing_settings: tuple[str, ...] = ()


ESPS: dict[str, Esp] = {esp.slug: esp for esp in (
    Esp("amazon_ses", "Amazon SES", "amazon_ses.AmazonSESTrackingWebhookView",
        ("amazon_ses_topic_arns", "amazon_ses_auto_confirm_sns_subscriptions")),
    Esp("brevo", "Brevo", "brevo.BrevoTrackingWebhookView"),
    Esp("sendinblue", "SendinBlue", "sendinblue.SendinBlueTrackingWebhookView"),
    Esp("mailersend", "MailerSend", "mailersend.MailerSendTrackingWebhookView", ("mailersend_signing_secret",)),
    Esp("mailgun", "Mailgun", "mailgun.MailgunTrackingWebhookView", ("mailgun_webhook_signing_key",)),
    Esp("mailjet", "Mailjet", "mailjet.MailjetTrackingWebhookView"),
    Esp("mailtrap", "Mailtrap", "mailtrap.MailtrapTrackingWebhookView", ("mailtrap_tracking_secret",)),
    # Mandrill has one view for tracking and inbound.
    Esp("mandrill", "Mandrill", "mandrill.MandrillCombinedWebhookView", ("mandrill_webhook_key", "mandrill_webhook_url")),
    Esp("postal", "Postal", "postal.PostalTrackingWebhookView", ("postal_webhook_key",)),
    Esp("postmark", "Postmark", "postmark.PostmarkTrackingWebhookView"),
    Esp("resend", "Resend", "resend.ResendTrackingWebhookView", ("resend_signing_secret",)),
    Esp("sendgrid", "SendGrid", "sendgrid.SendGridTrackingWebhookView", ("sendgrid_tracking_webhook_verification_key",)),
    Esp("sparkpost", "SparkPost", "sparkpost.SparkPostTrackingWebhookView"),
    Esp("unisender_go", "Unisender Go", "unisender_go.UnisenderGoTrackingWebhookView", ("unisender_go_api_key",)),
)}  # fmt: skip
ESP_SLUGS = tuple(ESPS)
# URL slug -> anymail's ESP name; URL slug -> anymail's view.
ESP_NAMES: dict[str, str] = {slug: esp.name for slug, esp in ESPS.items()}
ANYMAIL_VIEWS: dict[str, str] = {slug: f"anymail.webhooks.{esp.anymail_view}" for slug, esp in ESPS.items()}


def esp_slug(name: str) -> str:
    """The URL slug of an ESP given by slug or anymail name, any case ("Postmark", "amazon_ses"); ValueError if none."""
    wanted = name.strip().lower()
    for slug, esp_name in ESP_NAMES.items():
        if wanted in (slug, esp_name.lower()):
            return slug
    raise ValueError(f"unknown ESP {name!r}: one of {', '.join(ESP_NAMES)}")
