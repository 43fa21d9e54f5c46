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
