"""`?api_token=` values never reach a request log: runserver's and gunicorn's error log here, its access log in
tests/integration."""
import logging
import threading
import urllib.request

from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer

TOKEN = "er_abcdefgh_LEAKCANARYLEAKCANARYLEAKCANARY12"


def _not_found(environ, start_response):
    start_response("404 Not Found", [("Content-Length", "0")])
    return [b""]


def test_runserver_request_lines_mask_the_token():
    """Django's development server logs each request line with its query string; the token is masked there."""
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    server_log = logging.getLogger("django.server")
    server_log.addHandler(handler)
    server = WSGIServer(("127.0.0.1", 0), WSGIRequestHandler)
    server.set_app(_not_found)
    thread = threading.Thread(target=server.handle_request)
    thread.start()
    try:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/api/docs/?a=1&api_token={TOKEN}")
        except urllib.error.HTTPError as error:
            assert error.code == 404
        thread.join(timeout=10)
    finally:
        server_log.removeHandler(handler)
        server.server_close()
    lines = [record.getMessage() for record in records]
    assert lines == ['"GET /api/docs/?a=1&api_token=[masked] HTTP/1.1" 404 0']


def test_gunicorn_error_log_masks_the_token():
    """A request gunicorn could not handle is named in its error log by its URI, query string included."""
    from gunicorn.config import Config

    from config.gunicorn_logging import AccessLogger

    records = []
    handler = logging.Handler()
    handler.emit = records.append
    log = AccessLogger(Config())
    log.error_log.addHandler(handler)
    try:
        # As gunicorn's worker reports a request whose handling raised (workers/base.py, handle_error).
        log.exception("Error handling request %s", f"/api/wf/x?n=1&api_token={TOKEN}")
        log.error(f"Invalid request from ip=127.0.0.1: GET /?api_token={TOKEN} HTTP/1.1")
    finally:
        log.error_log.removeHandler(handler)
    assert [record.getMessage() for record in records] == [
        "Error handling request /api/wf/x?n=1&api_token=[masked]",
        "Invalid request from ip=127.0.0.1: GET /?api_token=[masked] HTTP/1.1",
    ]
