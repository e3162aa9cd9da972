"""Property-based tests (Hypothesis) over parameter coercion and the expression sandbox.

No deadline (a loaded CI machine must not fail a correct example); derandomized when CI=true so that
CI sees the same examples every run; bigger with ENGINE_ROOM_RELIABILITY_SIZE=large.
"""
import json
import os
import resource
import time

import pytest
from django.core.serializers.json import DjangoJSONEncoder
from django.http import QueryDict
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.errors import ExpressionError, ParameterError
from datastore.types import SCALAR_TYPES
from workflows import expressions
from workflows.definition import Parameter
from workflows.parameters import coerce_params

from .conftest import bearer

LARGE = os.environ.get("ENGINE_ROOM_RELIABILITY_SIZE") == "large"
settings.register_profile(
    "engine-room", deadline=None, database=None, derandomize=os.environ.get("CI") == "true",
    max_examples=2000 if LARGE else 150, suppress_health_check=[HealthCheck.too_slow,
                                                             HealthCheck.function_scoped_fixture],
)
PROFILE = settings.get_profile("engine-room")
CANARY = "S3CR3T-canary-value"
# What an escape from the sandbox would put in a result: modules, frames, code, the builtins, a
# secret scope's insides.
ESCAPE_MARKERS = ("<module", "<frame", "<code", "__builtins__", "'__import__'", "<SecretScope", "_loader")
# Python objects that are not data: what the last test of this file makes sure never leaves an expression.
OBJECT_MARKERS = ("<class", "<function", "<built-in", "<bound", "<method", "<slot wrapper", "<Namespace",
                  "<jinja2", "<generator")

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=25,
)
parameters = st.builds(
    Parameter,
    name=st.sampled_from(["a", "b", "c"]),
    type=st.sampled_from(SCALAR_TYPES),
    list=st.booleans(),
    required=st.booleans(),
    default=st.none() | json_values,
)
# Text as people and webhook senders type it: numbers, dates, emails, URLs, JSON, junk.
typed_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "0", "1.5", "-7", "1e400", "true", "false", "yes", "null", "[]", "[1,2]", '{"a": 1}',
                     "2024-02-30", "2024-02-29", "2024-06-01T12:00:00Z", "2024-06-01T25:00", "a@b.co", "a@",
                     "http://x.example/p", "javascript:alert(1)", "ftp://x", "/media/uploads/a.txt", "1,2,3"]),
    st.integers().map(str), st.floats(allow_nan=True).map(str),
)


def _storable(value) -> None:
    json.dumps(value, cls=DjangoJSONEncoder, allow_nan=False)


@PROFILE
@given(params=st.lists(parameters, max_size=3, unique_by=lambda p: p.name),
       raw=st.dictionaries(st.sampled_from(["a", "b", "c", "d"]), json_values, max_size=4))
def test_coercing_json_values_gives_storable_values_or_names_the_bad_field(params, raw):
    """From a JSON body: a dict of storable values, or a ParameterError naming only declared fields."""
    try:
        values = coerce_params(params, raw, source="json")
    except ParameterError as exc:
        assert exc.fields and set(exc.fields) <= {p.name for p in params}
        return
    _storable(values)
    assert set(values) <= {p.name for p in params}
    # Coercion is a fixed point: a stored value coerces to itself (a re-run, a scheduled hop).
    assert coerce_params(params, values, source="json") == values


@PROFILE
@given(params=st.lists(parameters, max_size=3, unique_by=lambda p: p.name),
       pairs=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), typed_text), max_size=6),
       source=st.sampled_from(["query", "form"]))
def test_coercing_form_and_query_text_never_raises_anything_else(params, pairs, source):
    """From a query string or form: storable values or a ParameterError — nothing else, ever."""
    query = QueryDict(mutable=True)
    for key, value in pairs:
        query.appendlist(key, value)
    try:
        values = coerce_params(params, query, source=source)
    except ParameterError as exc:
        assert exc.fields
        return
    _storable(values)


@pytest.mark.django_db
@PROFILE
@given(body=st.dictionaries(st.sampled_from(["email", "amount", "tags", "when", "meta", "x"]), json_values,
                            max_size=5))
def test_the_endpoint_answers_202_or_a_json_400_to_any_json_object(body, make_workflow, admin_token):
    """End to end through the webhook: a run or a 400 naming fields; never a 500."""
    from workflows.models import Workflow

    if not Workflow.objects.filter(name="echo").exists():
        make_workflow(parameters=[
            {"name": "email", "type": "email"}, {"name": "amount", "type": "number"},
            {"name": "tags", "type": "text", "list": True}, {"name": "when", "type": "datetime"},
            {"name": "meta", "type": "object"},
        ])
    response = Client(raise_request_exception=False).post(
        "/api/wf/echo", json.dumps(body), content_type="application/json", **bearer(admin_token))
    assert response.status_code in (202, 400), response.content[:300]
    assert response["Content-Type"].startswith("application/json")


# --- The expression sandbox -----------------------------------------------------------------------

NAMES = ["params", "steps", "run", "workflow", "now", "request", "secrets", "record", "nothing", "''", "[]", "{}",
         "range", "loop", "self", "cycler", "joiner", "namespace", "dict", "lipsum"]
ATTRIBUTES = ["__class__", "__mro__", "__subclasses__", "__globals__", "__init__", "__dict__", "__builtins__",
              "__import__", "__getattribute__", "__reduce_ex__", "mro", "format", "format_map", "items", "keys",
              "values", "get", "pop", "update", "append", "clear", "gi_frame", "f_globals", "_loader", "_values",
              "revealed", "_forms", "upper", "join", "split", "replace", "center", "zfill", "encode", "API_KEY",
              "id", "body", "headers", "x", "0", "real", "func_globals", "environment", "globals", "_TemplateReference__context"]
FILTERS = ["attr('__class__')", "attr('format')", "format('{0.__class__}')", "map('upper')", "join", "tojson",
           "json", "from_json", "replace('a', 'bb')", "center(100000)", "wordwrap(3)", "indent(50)", "batch(3)",
           "slice(2)", "sum", "list", "string", "length", "add_days(1)", "format_date", "first", "reverse",
           "sort", "unique", "dictsort", "groupby('x')", "selectattr('x')", "max", "urlize", "truncate(5)"]
LITERALS = ["0", "1", "-1", "2", "10", "100000", "10 ** 100", "2 ** 4096", "9" * 50, "1.5", "'a'", "'%s'", "'{0}'",
            "'x' * 1000", "[1, 2, 3]", "{'a': 1}", "none", "true", "'__class__'", "range(100000)", "'secrets'"]


@st.composite
def expressions_sources(draw):
    def term(depth):
        choice = draw(st.integers(0, 6 if depth < 3 else 1))
        if choice == 0:
            return draw(st.sampled_from(LITERALS))
        if choice == 1:
            path = draw(st.sampled_from(NAMES))
            for attribute in draw(st.lists(st.sampled_from(ATTRIBUTES), max_size=3)):
                path += draw(st.sampled_from([f".{attribute}", f"['{attribute}']"]))
            return path
        if choice == 2:
            return f"{term(depth + 1)} {draw(st.sampled_from(['*', '**', '+', '%', '//', '~', '==', 'in']))} " \
                   f"{term(depth + 1)}"
        if choice == 3:
            return f"{term(depth + 1)} | {draw(st.sampled_from(FILTERS))}"
        if choice == 4:
            args = ", ".join(term(depth + 1) for _ in range(draw(st.integers(0, 2))))
            return f"{term(depth + 1)}({args})"
        if choice == 5:
            return f"({term(depth + 1)})[{term(depth + 1)}]"
        return f"[{term(depth + 1)}, {term(depth + 1)}]"

    body = term(0)
    shape = draw(st.integers(0, 3))
    if shape == 0:
        return "{{ " + body + " }}"
    if shape == 1:
        return "text {{ " + body + " }} more"
    if shape == 2:
        return "{% for x in " + body + " %}{{ x }}{% for y in " + term(1) + " %}{{ y }}{% endfor %}{% endfor %}"
    return "{% set v = " + body + " %}{{ v }}{{ " + term(1) + " }}"


def _scope():
    return {
        "params": {"name": "Ada", "items": [1, 2, 3], "nested": {"deep": {"er": "x"}}},
        "steps": {"first": {"id": "r1", "value": 3}},
        "run": {"id": "run-1", "trigger": "webhook", "depth": 0},
        "workflow": {"name": "w", "version": 1},
        "now": __import__("django.utils.timezone", fromlist=["now"]).now(),
        "request": {"method": "POST", "headers": {"X": "y"}, "query": {}, "body": {"a": 1}},
        "secrets": expressions.SecretScope(lambda name: CANARY if name == "API_KEY" else None),
        "record": None,
        "before": None,
    }


def _as_text(value) -> str:
    try:
        return json.dumps(value, default=repr)
    except (TypeError, ValueError):
        return repr(value)


_BASELINE_RSS_KB = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


@PROFILE
@given(source=expressions_sources())
def test_the_sandbox_raises_only_expression_errors_and_leaks_nothing(source):
    """Any template: a value or an ExpressionError, within the time and size limits, and no Python
    object, internal or secret reaches the result unless the template asked for `secrets`."""
    from django.conf import settings as django_settings

    started = time.monotonic()
    try:
        result = expressions.render(source, _scope())
    except ExpressionError:
        result = None
    elapsed = time.monotonic() - started
    assert elapsed < django_settings.ENGINE_ROOM_EXPRESSION_TIME_LIMIT + 3, (elapsed, source)
    text = _as_text(result)
    assert len(text) <= 2 * django_settings.ENGINE_ROOM_EXPRESSION_OUTPUT_LIMIT + 1024, (len(text), source)
    for marker in ESCAPE_MARKERS:
        assert marker not in text, (marker, source, text[:300])
    if "secrets" not in source:
        assert CANARY not in text, source
    # Memory stays bounded across every example (maxrss only grows: this is the high-water mark).
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - _BASELINE_RSS_KB) / 1024
    assert grown_mb < 512, (grown_mb, source)


@PROFILE
@given(source=st.one_of(expressions_sources(), st.text(max_size=80).map(lambda t: "{{ " + t + " }}"),
                        st.text(max_size=80).map(lambda t: "{% " + t + " %}"), st.text(max_size=120)))
def test_saving_checks_raise_nothing_but_expression_errors(source):
    """What saving a definition runs on every string: check(), then names_used() and step_keys_used()."""
    problem = expressions.check(source)
    assert problem is None or isinstance(problem, str)
    if problem is None:
        try:
            assert isinstance(expressions.names_used(source), set)
            assert isinstance(expressions.step_keys_used(source), set)
        except ExpressionError:
            pass
    try:
        value = expressions.evaluate_condition(source, _scope())
        assert isinstance(value, bool)
    except ExpressionError:
        pass


@pytest.mark.parametrize("source", ["{{ cycler }}", "{{ range }}", "{{ namespace(a=1) }}", "{{ joiner }}",
                                    "{{ cycler(1, 2) }}", "{{ ''.format }}", "{{ request.headers.get }}",
                                    "text {{ cycler }}"])
def test_an_expression_yields_data_or_an_expression_error(source):
    try:
        value = expressions.render(source, _scope())
    except ExpressionError:
        return
    assert not any(marker in _as_text(value) for marker in ESCAPE_MARKERS + OBJECT_MARKERS), value
