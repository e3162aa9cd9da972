"""`?api_token=` values masked in log lines: the text function, and a filter for runserver's request log."""
import logging
import re

MASK = "[masked]"
MASKED = rf"\g<1>{MASK}"


def _spelled(char: str) -> str:
    """A pattern for one character of the key as a URL may spell it: itself or percent-encoded."""
    codes = {f"%{ord(form):02x}" for form in {char.lower(), char.upper()}}
    return "(?:" + "|".join([re.escape(char), *sorted(codes)]) + ")"


# The key at the start of a query string or after a separator (`;` too: Django does not split on it,
# so `a=1;api_token=…` hands the token over inside a's value, and masking it there costs nothing), in any
# case and percent-encoding (`api%5Ftoken` is read as `api_token`); its value runs to the next `&`, the
# fragment, or the end of the URL in a log line (whitespace or a quote). The same with encoded separators,
# for a URL carried inside another's parameter (a login page's `?next=/x/%3Fapi_token%3D…`).
API_TOKEN_VALUE = re.compile(
    r"(?:(?<![^?&;])|(?<=%3f)|(?<=%26)|(?<=%3b))("
    + "".join(_spelled(char) for char in "api_token")
    + r"(?:=|%3d))(?:(?!%26)[^&#\s\"])*",
    re.IGNORECASE,
)


def mask_api_token(text: str) -> str:
    """text with the value of every `api_token` query parameter in it replaced by MASK."""
    # Most texts carry neither `=` nor `%`, and skipping them is far cheaper than the search.
    return API_TOKEN_VALUE.sub(MASKED, text) if "=" in text or "%" in text else text


class ApiTokenFilter(logging.Filter):
    """Masks `api_token` values in a record's message and arguments (runserver's `django.server` request
    lines, gunicorn's error log)."""

    def filter(self, record):
        if isinstance(record.msg, str):
            record.msg = mask_api_token(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(mask_api_token(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True
