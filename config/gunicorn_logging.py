"""gunicorn's logger class for the web processes: its access log never shows an `?api_token=` value."""
from gunicorn.glogging import Logger

from config.log_masking import API_TOKEN_VALUE, MASKED, ApiTokenFilter


class AccessLogger(Logger):
    """gunicorn's logger, with `api_token` values masked in every atom of the access log line and in its
    error log (a request that failed is named there by its URI: "Error handling request GET /…?api_token=…")."""

    def setup(self, cfg):
        super().setup(cfg)
        if not any(isinstance(each, ApiTokenFilter) for each in self.error_log.filters):  # setup runs again on reload
            self.error_log.addFilter(ApiTokenFilter())

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        # Every string atom, not only the request line (`r`), query (`q`) and Referer (`f`): a format may
        # name `{referer}i`, `{raw_uri}e`, `{query_string}e` or a redirect's `{location}o` as well. Most
        # atoms carry neither `=` nor `%`; skipping them keeps the cost per request at a few microseconds.
        for key, value in atoms.items():
            if isinstance(value, str) and ("=" in value or "%" in value):
                atoms[key] = API_TOKEN_VALUE.sub(MASKED, value)
        return atoms
