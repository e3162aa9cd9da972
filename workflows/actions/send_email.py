"""send_email: one email through Django's email backend (Bubble's "Send email")."""
import mimetypes
import posixpath
import smtplib
from email.utils import parseaddr
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.files.storage import default_storage
from django.core.mail import DNS_NAME, EmailMultiAlternatives, get_connection, make_msgid
from django.core.validators import validate_email
from django.utils.html import strip_tags
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from config.errors import ActionError, ErrorCode
from workflows import outbound

from .base import Action, ActionConfig
from .http_request import validate_http_url


def validate_address(value: str) -> str:
    """One address, bare or as "Name <address>"; returns it stripped or raises a DRF ValidationError."""
    value = value.strip()
    _, address = parseaddr(value)
    try:
        if "\r" in value or "\n" in value or not address:
            raise DjangoValidationError("invalid")
        validate_email(address)
    except DjangoValidationError:
        raise serializers.ValidationError(f"{value!r} is not a valid email address.") from None
    return value


class EmailAddressField(serializers.CharField):
    """A single email address."""

    def to_internal_value(self, data):
        return validate_address(super().to_internal_value(data))


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "format": "email"},
            {"type": "array", "items": {"type": "string", "format": "email"}},
        ]
    }
)
class EmailListField(serializers.Field):
    """An address or a list of addresses, each validated; always a list once validated."""

    default_error_messages = {
        "type": "Expected an email address or a list of them.",
        "empty": "Give at least one address.",
    }

    def __init__(self, *, allow_empty: bool = True, **kwargs):
        self.allow_empty = allow_empty
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        items = [data] if isinstance(data, str) else data
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            self.fail("type")
        if not items and not self.allow_empty:
            self.fail("empty")
        return [validate_address(item) for item in items]

    def to_representation(self, value):
        return value


class AttachmentSerializer(serializers.Serializer):
    """A file to attach, as create_file describes it: read from storage by `path`, else fetched by `url`."""

    # Other keys of a create_file output (size, expires_at) are ignored, so a step's whole output fits.
    name = serializers.CharField(required=False, help_text="File name shown to the recipient.")
    path = serializers.CharField(required=False, help_text="Path of the file in the app's file storage.")
    url = serializers.CharField(
        required=False, validators=[validate_http_url], help_text="URL to download the file from, if no path."
    )
    content_type = serializers.CharField(required=False, help_text="MIME type; guessed from the name if absent.")

    def validate(self, attrs):
        if not attrs.get("path") and not attrs.get("url"):
            raise serializers.ValidationError("Give the file's path or url.")
        return attrs


class SendEmail(Action):
    """Send one email, with an optional HTML part and attachments."""

    type = "send_email"
    # It writes nothing to the database: no transaction is held open (on SQLite, a write lock)
    # while it waits on the network; its log row commits right after.
    transactional = False
    label = "Send an email"
    description = (
        "Sends an email through the server's email settings, with an optional HTML version and "
        "attachments. The output is the Message-ID and the recipients."
    )
    group = "Integrations"
    wu_cost = settings.ENGINE_ROOM_WU_COSTS["email"]
    example = {
        "to": "sales@example.com",
        "subject": "Paid: {{ steps.invoice.id }}",
        "body": "Invoice {{ steps.invoice.id }} was paid.",
    }

    class Config(ActionConfig):
        to = EmailListField(allow_empty=False, help_text="Recipient address, or a list of them.")
        cc = EmailListField(required=False, help_text="Copy recipients: an address or a list.")
        bcc = EmailListField(required=False, help_text="Hidden recipients: an address or a list.")
        subject = serializers.CharField(max_length=998, help_text="Subject line.")
        body = serializers.CharField(
            allow_blank=True,
            trim_whitespace=False,
            help_text="Plain-text body; if blank and html is given, the text is taken from the HTML.",
        )
        html = serializers.CharField(
            required=False, trim_whitespace=False, help_text="Optional HTML version of the body."
        )
        from_ = EmailAddressField(
            required=False, help_text="Sender address; default the server's DEFAULT_FROM_EMAIL."
        )
        reply_to = EmailListField(required=False, help_text="Reply-To address, or a list of them.")
        attachments = AttachmentSerializer(
            many=True, required=False, help_text="Files to attach, such as the outputs of create_file steps."
        )

        def get_fields(self):
            # `from` is a Python keyword, so the field is declared as from_ and exposed as "from".
            return {("from" if name == "from_" else name): field for name, field in super().get_fields().items()}

        def validate_subject(self, value):
            if "\r" in value or "\n" in value:
                raise serializers.ValidationError("The subject must be one line.")
            return value

    def run(self, *, config, context):
        if context.dry_run:
            context.captured.append(
                {"kind": "email", "to": config["to"], "subject": config["subject"], "body": config["body"]}
            )
            return {"message_id": None, "to": config["to"], "dry_run": True}

        html = config.get("html")
        body = config["body"] or (strip_tags(html) if html else "")
        # The cached DNS_NAME, as Django does: make_msgid() alone looks up the FQDN on every call.
        message_id = make_msgid(domain=DNS_NAME)
        message = EmailMultiAlternatives(
            config["subject"],
            body,
            config.get("from") or settings.DEFAULT_FROM_EMAIL,
            config["to"],
            cc=config.get("cc"),
            bcc=config.get("bcc"),
            reply_to=config.get("reply_to"),
            headers={"Message-ID": message_id},
        )
        if html:
            message.attach_alternative(html, "text/html")
        for attachment in config.get("attachments") or []:
            message.attach(*self.load_attachment(attachment, context=context))

        timeout = min(settings.EMAIL_TIMEOUT, context.remaining_seconds())
        if timeout <= 0:
            raise ActionError("The run's time limit passed before the email was sent.", code=ErrorCode.TIMEOUT)
        try:
            message.connection = get_connection(timeout=timeout)
            message.send()
        except (OSError, ValueError) as exc:
            raise email_error(exc) from exc
        return {"message_id": message_id, "to": config["to"]}

    def load_attachment(self, attachment: dict, *, context) -> tuple[str, bytes, str]:
        """(name, content, content type) of one attachment; a missing file fails the step."""
        path, url = attachment.get("path"), attachment.get("url")
        if path:
            content = _read_stored(path)
        else:
            content = _download(url, timeout=context.remaining_seconds())
        name = attachment.get("name") or posixpath.basename(path or urlsplit(url).path) or "attachment"
        content_type = (
            attachment.get("content_type") or mimetypes.guess_type(name)[0] or "application/octet-stream"
        )
        return name, content, content_type


def _read_stored(path: str) -> bytes:
    try:
        if not default_storage.exists(path):
            raise FileNotFoundError(path)
        with default_storage.open(path, "rb") as stored:
            return stored.read()
    except (FileNotFoundError, SuspiciousFileOperation) as exc:
        raise ActionError(f"Attachment file not found: {path}", code=ErrorCode.EMAIL_FAILED) from exc


def _download(url: str, *, timeout: float) -> bytes:
    if timeout <= 0:
        raise ActionError("The run's time limit passed before the email was sent.", code=ErrorCode.TIMEOUT)
    response = outbound.send(
        requests.Request("GET", url).prepare(),
        timeout=min(timeout, settings.ENGINE_ROOM_HTTP_DEFAULT_TIMEOUT),
        max_bytes=settings.ENGINE_ROOM_HTTP_MAX_RESPONSE_BYTES,
    )
    if not 200 <= response.status < 300:
        raise ActionError(
            f"Could not download attachment {url}: HTTP {response.status}.",
            retryable=response.status >= 500 or response.status == 429,
            code=ErrorCode.EMAIL_FAILED,
        )
    return response.content


def email_error(exc: Exception) -> ActionError:
    """An SMTP or connection failure as an ActionError; temporary (4xx) and connection failures are retryable."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(f"{address}: {code} {reply!r}" for address, (code, reply) in exc.recipients.items())
        return ActionError(
            f"The mail server refused every recipient ({detail}).",
            retryable=bool(codes) and all(400 <= code < 500 for code in codes),
            code=ErrorCode.EMAIL_FAILED,
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        return ActionError(
            f"The mail server answered {exc.smtp_code}: {reply}",
            retryable=400 <= exc.smtp_code < 500,
            code=ErrorCode.EMAIL_FAILED,
        )
    if isinstance(exc, smtplib.SMTPServerDisconnected) or (
        isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException)
    ):
        return ActionError(f"Could not talk to the mail server: {exc}", retryable=True, code=ErrorCode.EMAIL_FAILED)
    return ActionError(f"Sending the email failed: {exc}", code=ErrorCode.EMAIL_FAILED)
