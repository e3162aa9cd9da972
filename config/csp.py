"""Django's Content-Security-Policy middleware, with each policy that carries no nonce built once."""
from django.conf import settings
from django.middleware import csp
from django.utils.csp import CSP, build_policy


class ContentSecurityPolicyMiddleware(csp.ContentSecurityPolicyMiddleware):
    """Django's middleware; a response whose nonce nobody read takes a policy built once per setting
    (building it cost a workflow call 2% of its instructions in the web process, bench O39)."""

    built: dict = {}

    def process_response(self, request, response):
        if csp.get_nonce(request) or hasattr(response, "_csp_config") or hasattr(response, "_csp_ro_config"):
            return super().process_response(request, response)
        for header, config in ((CSP.HEADER_ENFORCE, settings.SECURE_CSP),
                               (CSP.HEADER_REPORT_ONLY, settings.SECURE_CSP_REPORT_ONLY)):
            if config and header not in response:
                response.headers[str(header)] = self._policy(config)
        return response

    def _policy(self, config) -> str:
        # Keyed by the setting's object: a test's override_settings gives a new one.
        found = self.built.get(id(config))
        if found is None or found[0] is not config:
            found = self.built[id(config)] = (config, build_policy(config))
        return found[1]
