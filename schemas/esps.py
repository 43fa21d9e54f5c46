"""The ESPs espstream receives webhooks from: URL slug -> anymail's ESP name."""

ESP_NAMES: dict[str, str] = {
    "amazon_ses": "Amazon SES",
    "brevo": "Brevo",
    "sendinblue": "SendinBlue",
    "mailersend": "MailerSend",
    "mailgun": "Mailgun",
    "mailjet": "Mailjet",
    "mailtrap": "Mailtrap",
    "mandrill": "Mandrill",
    "postal": "Postal",
    "postmark": "Postmark",
    "resend": "Resend",
    "sendgrid": "SendGrid",
    "sparkpost": "SparkPost",
    "unisender_go": "Unisender Go",
}
ESP_SLUGS = tuple(ESP_NAMES)


def esp_slug(name: str) -> str:
    """The URL slug of an ESP given by slug or anymail name, any case ("Postmark", "amazon_ses"); ValueError if none."""
    wanted = name.strip().lower()
    for slug, esp_name in ESP_NAMES.items():
        if wanted in (slug, esp_name.lower()):
            return slug
    raise ValueError(f"unknown ESP {name!r}: one of {', '.join(ESP_NAMES)}")

# URL slug -> django-anymail's tracking webhook view (a dotted path: anymail is never imported here).
ANYMAIL_VIEWS: dict[str, str] = {
    "amazon_ses": "anymail.webhooks.amazon_ses.AmazonSESTrackingWebhookView",
    "brevo": "anymail.webhooks.brevo.BrevoTrackingWebhookView",
    "sendinblue": "anymail.webhooks.sendinblue.SendinBlueTrackingWebhookView",
    "mailersend": "anymail.webhooks.mailersend.MailerSendTrackingWebhookView",
    "mailgun": "anymail.webhooks.mailgun.MailgunTrackingWebhookView",
    "mailjet": "anymail.webhooks.mailjet.MailjetTrackingWebhookView",
    "mailtrap": "anymail.webhooks.mailtrap.MailtrapTrackingWebhookView",
    # Mandrill has one view for tracking and inbound.
    "mandrill": "anymail.webhooks.mandrill.MandrillCombinedWebhookView",
    "postal": "anymail.webhooks.postal.PostalTrackingWebhookView",
    "postmark": "anymail.webhooks.postmark.PostmarkTrackingWebhookView",
    "resend": "anymail.webhooks.resend.ResendTrackingWebhookView",
    "sendgrid": "anymail.webhooks.sendgrid.SendGridTrackingWebhookView",
    "sparkpost": "anymail.webhooks.sparkpost.SparkPostTrackingWebhookView",
    "unisender_go": "anymail.webhooks.unisender_go.UnisenderGoTrackingWebhookView",
}
