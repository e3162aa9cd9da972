"""Masks the running workflow's secrets in the log records of the libraries that make its HTTP calls."""
import logging

from workflows.expressions import current_secrets


class SecretMaskingHandler(logging.Handler):
    """Masks the current run's secrets in each record in place, so the handlers after it see them masked.

    It goes on a library's top logger ("urllib3"), whose handlers see the records of all its modules
    ("urllib3.connection") before root's: a filter on that logger would miss its child loggers' records,
    and one on root's handlers would be lost in a worker, where Celery replaces them with its own.
    """

    def handle(self, record: logging.LogRecord) -> bool:
        secrets = current_secrets.get()
        if secrets is not None:
            mask_record(record, secrets)
        return True

    def emit(self, record: logging.LogRecord) -> None:
        pass


def mask_record(record: logging.LogRecord, secrets) -> None:
    """Replace the record's message, traceback and stack text by their masked forms where a secret is in them."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: the handler that emits it reports it, as logging does
        return
    masked = secrets.mask(message)
    if masked != message:
        record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        masked = secrets.mask(record.exc_text)
        if masked != record.exc_text:
            # Formatters print exc_text when it is set; without the live exception nothing can re-render it.
            record.exc_text, record.exc_info = masked, None
    if record.stack_info:
        record.stack_info = secrets.mask(record.stack_info)
