"""send_email: its Config and run() against a real SMTP server on loopback."""
import email
from email import policy

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from config.errors import ActionError, ErrorCode
from tests.conftest import free_port
from workflows.actions.send_email import SendEmail

action = SendEmail()


def validated(config: dict) -> dict:
    return action.validate_runtime(config)


def send(config: dict, context) -> dict:
    return action.run(config=validated(config), context=context)


def parsed(envelope) -> email.message.EmailMessage:
    return email.message_from_bytes(envelope.content, policy=policy.default)


@pytest.fixture
def storage(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    return default_storage


# --- Config ---------------------------------------------------------------------------------


def test_example_is_valid():
    assert SendEmail.Config(data=SendEmail.example).is_valid()


def test_to_subject_and_body_are_required():
    serializer = SendEmail.Config(data={})
    assert not serializer.is_valid()
    assert {"to", "subject", "body"} <= set(serializer.errors)


def test_unknown_keys_are_refused():
    serializer = SendEmail.Config(data={"to": "a@example.com", "subject": "s", "body": "b", "sender": "x"})
    assert not serializer.is_valid()
    assert serializer.errors["sender"] == ["unknown key"]


def test_the_sender_key_is_literally_from():
    config = validated({"to": "a@example.com", "subject": "s", "body": "b", "from": "Shop <shop@example.com>"})
    assert config["from"] == "Shop <shop@example.com>"
    assert "from" in SendEmail.Config().fields and "from_" not in SendEmail.Config().fields
    with pytest.raises(ActionError) as caught:
        validated({"to": "a@example.com", "subject": "s", "body": "b", "from_": "shop@example.com"})
    assert "from_" in caught.value.extra["fields"]


def test_an_address_or_a_list_becomes_a_list():
    config = validated(
        {"to": "Ann <ann@example.com>", "cc": ["b@example.com", "c@example.com"], "subject": "s", "body": "b"}
    )
    assert config["to"] == ["Ann <ann@example.com>"]
    assert config["cc"] == ["b@example.com", "c@example.com"]


@pytest.mark.parametrize(
    "overrides, field",
    [
        ({"to": "not-an-address"}, "to"),
        ({"to": []}, "to"),
        ({"to": 42}, "to"),
        ({"cc": ["ok@example.com", "broken@"]}, "cc"),
        ({"bcc": "a@example.com\nBcc: victim@example.com"}, "bcc"),
        ({"from": "nobody"}, "from"),
        ({"reply_to": ["x y z"]}, "reply_to"),
        ({"subject": "line one\r\nX-Injected: 1"}, "subject"),
        ({"subject": ["a list"]}, "subject"),
        ({"attachments": [{"name": "a.txt"}]}, "attachments"),
        ({"attachments": [{"url": "ftp://example.com/a.txt"}]}, "attachments"),
        ({"attachments": "report.csv"}, "attachments"),
    ],
)
def test_bad_values_fail_naming_the_field(overrides, field):
    with pytest.raises(ActionError) as caught:
        validated({"to": "a@example.com", "subject": "s", "body": "b", **overrides})
    fields = caught.value.extra["fields"]
    assert any(key == field or key.startswith(f"{field}[") or key.startswith(f"{field}.") for key in fields), fields


def test_a_bad_address_is_named_in_the_message():
    with pytest.raises(ActionError) as caught:
        validated({"to": ["ok@example.com", "broken@"], "subject": "s", "body": "b"})
    assert "broken@" in caught.value.message and "to" in caught.value.message


def test_a_create_file_output_is_accepted_as_an_attachment():
    create_file_output = {
        "name": "report.csv",
        "url": "https://files.example.com/report.csv?sig=abc",
        "path": "files/report.csv",
        "size": 12,
        "expires_at": "2030-01-01T00:00:00Z",
    }
    config = validated({"to": "a@example.com", "subject": "s", "body": "b", "attachments": [create_file_output]})
    assert config["attachments"][0]["path"] == "files/report.csv"


# --- run() ----------------------------------------------------------------------------------


def test_a_full_email_is_delivered(smtp_server, storage, make_context):
    storage.save("files/report.csv", ContentFile(b"id,total\n1,9.50\n"))

    output = send(
        {
            "to": ["Ann <ann@example.com>", "bob@example.com"],
            "cc": "carol@example.com",
            "bcc": ["dave@example.com"],
            "from": "Shop <shop@example.com>",
            "reply_to": "support@example.com",
            "subject": "Your invoice ✓",
            "body": "Plain text: total 9.50",
            "html": "<p>HTML: total <b>9.50</b></p>",
            "attachments": [{"name": "report.csv", "path": "files/report.csv", "content_type": "text/csv"}],
        },
        make_context(),
    )

    (envelope,) = smtp_server.envelopes
    assert envelope.mail_from == "shop@example.com"
    assert sorted(envelope.rcpt_tos) == [
        "ann@example.com",
        "bob@example.com",
        "carol@example.com",
        "dave@example.com",
    ]
    message = parsed(envelope)
    assert message["Subject"] == "Your invoice ✓"
    assert message["From"] == "Shop <shop@example.com>"
    assert message["To"] == "Ann <ann@example.com>, bob@example.com"
    assert message["Cc"] == "carol@example.com"
    assert message["Bcc"] is None
    assert message["Reply-To"] == "support@example.com"
    assert message["Message-ID"] == output["message_id"]
    assert output["to"] == ["Ann <ann@example.com>", "bob@example.com"]
    assert message.get_body(("plain",)).get_content().strip() == "Plain text: total 9.50"
    assert message.get_body(("html",)).get_content().strip() == "<p>HTML: total <b>9.50</b></p>"
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == "report.csv"
    assert attachment.get_content_type() == "text/csv"
    # Text parts travel with CRLF line ends, as SMTP wants.
    assert attachment.get_payload(decode=True).replace(b"\r\n", b"\n") == b"id,total\n1,9.50\n"


def test_default_sender_and_text_from_html(smtp_server, settings, make_context):
    settings.DEFAULT_FROM_EMAIL = "Engine Room <noreply@engine-room.test>"

    send({"to": "a@example.com", "subject": "Hi", "body": "", "html": "<h1>Hello</h1><p>there</p>"}, make_context())

    message = parsed(smtp_server.envelopes[0])
    assert message["From"] == "Engine Room <noreply@engine-room.test>"
    assert message.get_body(("plain",)).get_content().strip() == "Hellothere"


def test_an_attachment_can_be_downloaded_by_url(smtp_server, httpserver, make_context):
    httpserver.expect_request("/files/logo.png").respond_with_data(b"\x89PNG fake", content_type="image/png")

    send(
        {"to": "a@example.com", "subject": "Logo", "body": "attached", "attachments": [{"url": httpserver.url_for("/files/logo.png")}]},
        make_context(),
    )

    (attachment,) = list(parsed(smtp_server.envelopes[0]).iter_attachments())
    assert attachment.get_filename() == "logo.png"
    assert attachment.get_content_type() == "image/png"
    assert attachment.get_payload(decode=True) == b"\x89PNG fake"


def test_a_missing_attachment_fails_and_sends_nothing(smtp_server, storage, make_context):
    with pytest.raises(ActionError) as caught:
        send(
            {"to": "a@example.com", "subject": "s", "body": "b", "attachments": [{"path": "files/gone.pdf"}]},
            make_context(),
        )

    assert caught.value.code == ErrorCode.EMAIL_FAILED
    assert caught.value.retryable is False
    assert "files/gone.pdf" in caught.value.message
    assert smtp_server.envelopes == []


def test_an_attachment_path_outside_storage_is_refused(smtp_server, storage, make_context):
    with pytest.raises(ActionError, match="not found"):
        send(
            {"to": "a@example.com", "subject": "s", "body": "b", "attachments": [{"path": "../../etc/passwd"}]},
            make_context(),
        )
    assert smtp_server.envelopes == []


def test_a_permanently_refused_recipient_is_not_retryable(smtp_server, make_context):
    with pytest.raises(ActionError) as caught:
        send({"to": "reject@example.com", "subject": "s", "body": "b"}, make_context())

    assert caught.value.code == ErrorCode.EMAIL_FAILED
    assert caught.value.retryable is False
    assert "550" in caught.value.message


def test_a_temporarily_refused_recipient_is_retryable(smtp_server, make_context):
    with pytest.raises(ActionError) as caught:
        send({"to": "busy@example.com", "subject": "s", "body": "b"}, make_context())

    assert caught.value.retryable is True
    assert "450" in caught.value.message


def test_an_unreachable_mail_server_is_retryable(settings, make_context):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = free_port()

    with pytest.raises(ActionError) as caught:
        send({"to": "a@example.com", "subject": "s", "body": "b"}, make_context())

    assert caught.value.code == ErrorCode.EMAIL_FAILED
    assert caught.value.retryable is True


def test_dry_run_delivers_nothing(smtp_server, make_context):
    context = make_context(dry_run=True)

    output = send({"to": ["a@example.com", "b@example.com"], "subject": "Hi", "body": "text"}, context)

    assert output == {"message_id": None, "to": ["a@example.com", "b@example.com"], "dry_run": True}
    assert smtp_server.envelopes == []
    assert context.captured == [
        {"kind": "email", "to": ["a@example.com", "b@example.com"], "subject": "Hi", "body": "text"}
    ]
