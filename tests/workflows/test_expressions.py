"""The expression language: native values, text, filters, conditions, the sandbox's bounds and secret masking."""
import time
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from config.errors import ErrorCode, ExpressionError
from workflows import expressions
from workflows.expressions import SecretScope, check, evaluate_condition, names_used, render, step_keys_used

pytestmark = pytest.mark.timeout(60)

# Refusals are immediate; the bound only has to tell "refused" from "hung" on a slow machine.
QUICK = 2.5

NOW = datetime(2024, 1, 31, 10, 0, tzinfo=UTC)


@pytest.fixture
def scope():
    return {
        "params": {
            "amount": 5,
            "price": 9.5,
            "paid": True,
            "code": "12345",
            "zip": "007",
            "tags": ["a", "b"],
            "customer": {"name": "Ada", "plan": "pro"},
            "nothing": None,
        },
        "steps": {"search": {"items": [{"id": 1}, {"id": 2}], "count": 2}},
        "now": NOW,
        "run": {"id": "r-1", "depth": 0},
    }


def refused(source, scope=None, *, match: str) -> ExpressionError:
    """Render source, expecting a quick ExpressionError whose message matches."""
    started = time.monotonic()
    with pytest.raises(ExpressionError, match=match) as error:
        render(source, scope or {})
    assert time.monotonic() - started < QUICK
    assert error.value.code == ErrorCode.EXPRESSION
    assert "Traceback" not in error.value.message
    return error.value


# --- values and text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ params.amount }}", 5),
        ("{{ params.price }}", 9.5),
        ("{{ params.paid }}", True),
        ("{{ params.tags }}", ["a", "b"]),
        ("{{ params.customer }}", {"name": "Ada", "plan": "pro"}),
        ("{{ now }}", NOW),
        ("{{ params.nothing }}", None),
        ("{{ params.amount * 2 + 1 }}", 11),
        ("{{ {'a': {'b': [1, 2]}} }}", {"a": {"b": [1, 2]}}),
        ("  {{ params.amount }}\n", 5),
        ("{{- params.amount -}}", 5),
        ("{{ params.tags | map('upper') }}", ["A", "B"]),
        ("{{ range(3) }}", [0, 1, 2]),
    ],
)
def test_a_lone_expression_yields_its_native_value(scope, source, expected):
    result = render(source, scope)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(("source", "expected"), [("{{ params.code }}", "12345"), ("{{ params.zip }}", "007")])
def test_text_stays_text(scope, source, expected):
    assert render(source, scope) == expected
    assert render("{{ '[1, 2]' }}", scope) == "[1, 2]"
    assert render("{{ 'true' }}", scope) == "true"


def test_mixed_text_is_a_string(scope):
    assert render("Order #{{ params.code }} for {{ params.amount }}", scope) == "Order #12345 for 5"
    assert render("{{ params.amount }}{{ params.amount }}", scope) == "55"


def test_values_inside_text_read_as_users_expect(scope):
    assert render("name={{ params.nothing }};", scope) == "name=;"
    assert render("paid={{ params.paid }}", scope) == "paid=true"
    assert render("at {{ now }}", scope) == "at 2024-01-31T10:00:00+00:00"
    assert render("c={{ params.customer }}", scope) == 'c={"name": "Ada", "plan": "pro"}'
    assert render("t={{ params.tags | map('upper') }}", scope) == 't=["A", "B"]'
    assert render("{{ 'a' ~ params.nothing ~ params.amount }}", scope) == "a5"


def test_missing_names_and_attributes_are_empty_not_errors(scope):
    assert render("{{ params.missing.deeper.still }}", scope) is None
    assert render("Hi {{ params.missing.name }}!", scope) == "Hi !"
    assert render("{{ nobody }}", scope) is None
    assert render("{{ [params.missing, 1] }}", scope) == [None, 1]


def test_a_missing_list_loops_zero_times(scope):
    assert render("{% for t in params.nothing %}x{% else %}none{% endfor %}", scope) == "none"
    assert render("{% for t in params.missing %}x{% else %}none{% endfor %}", scope) == "none"


def test_data_keys_win_over_dict_methods(scope):
    assert render("{{ steps.search.items | map(attribute='id') | list }}", scope) == [1, 2]
    assert render("{{ params.customer.items() | list }}", scope) == [("name", "Ada"), ("plan", "pro")]


def test_render_walks_json_like_values(scope):
    config = {
        "fields": {"amount": "{{ params.amount }}", "status": "paid", "{{ key }}": "kept"},
        "to": ["{{ params.customer.name }}", "ops@example.com", 3, None],
        "count": 7,
        "flag": False,
    }
    assert render(config, scope) == {
        "fields": {"amount": 5, "status": "paid", "{{ key }}": "kept"},
        "to": ["Ada", "ops@example.com", 3, None],
        "count": 7,
        "flag": False,
    }
    assert config["fields"]["amount"] == "{{ params.amount }}"


def test_plain_strings_and_non_strings_are_returned_as_they_are(scope):
    plain = "no expressions here, not even } or {"
    assert render(plain, scope) is plain
    marker = object()
    assert render(marker, scope) is marker
    assert render(42, scope) == 42


def test_is_expression():
    assert expressions.is_expression("{{ x }}")
    assert expressions.is_expression("{% if x %}y{% endif %}")
    assert not expressions.is_expression("{ x }")
    assert not expressions.is_expression(["{{ x }}"])


def test_globals_that_stay_work_and_lipsum_is_gone():
    source = "{% set ns = namespace(total=0) %}{% for n in [1, 2, 3] %}{% set ns.total = ns.total + n %}{% endfor %}"
    assert render(source + "{{ ns.total }}", {}) == "6"
    assert render("{% set c = cycler('odd', 'even') %}{{ c.next() }}-{{ c.next() }}", {}) == "odd-even"
    assert render("{% set j = joiner(', ') %}{% for x in 'ab' %}{{ j() }}{{ x }}{% endfor %}", {}) == "a, b"
    assert render("{{ dict(a=1) }}", {}) == {"a": 1}
    refused("{{ lipsum(10 ** 9) }}", match="'lipsum' is undefined")


# --- filters ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ now | add_days(1) }}", datetime(2024, 2, 1, 10, 0, tzinfo=UTC)),
        ("{{ now | add_days(-31) }}", datetime(2023, 12, 31, 10, 0, tzinfo=UTC)),
        ("{{ now | add_hours(15) }}", datetime(2024, 2, 1, 1, 0, tzinfo=UTC)),
        ("{{ now | add_minutes(90) }}", datetime(2024, 1, 31, 11, 30, tzinfo=UTC)),
        ("{{ now | add_seconds(5) }}", datetime(2024, 1, 31, 10, 0, 5, tzinfo=UTC)),
        ("{{ '2024-02-28' | add_days(1) }}", date(2024, 2, 29)),
        ("{{ '2024-02-28' | add_hours(6) }}", datetime(2024, 2, 28, 6, 0)),
        ("{{ '2024-01-31T10:00:00Z' | add_days('2') }}", datetime(2024, 2, 2, 10, 0, tzinfo=UTC)),
        ("{{ '2024-01-31T10:00:00Z' | parse_date }}", datetime(2024, 1, 31, 10, 0, tzinfo=UTC)),
        ("{{ '2024-01-31' | parse_date }}", date(2024, 1, 31)),
        ("{{ '31/01/2024' | parse_date('%d/%m/%Y') }}", datetime(2024, 1, 31)),
        ("{{ params.missing | add_days(1) }}", None),
    ],
)
def test_date_filters(scope, source, expected):
    result = render(source, scope)
    assert result == expected
    assert type(result) is type(expected)


def test_format_date(scope):
    assert render("{{ now | format_date }}", scope) == "2024-01-31"
    assert render("{{ now | add_days(1) | format_date('%d.%m.%Y %H:%M') }}", scope) == "01.02.2024 10:00"
    assert render("due {{ '2024-03-01' | format_date('%B %-d') }}", scope) == "due March 1"
    assert render("[{{ params.nothing | format_date }}]", scope) == "[]"


def test_a_bad_date_names_the_filter_and_the_value(scope):
    refused("{{ 'next tuesday' | add_days(1) }}", scope, match="add_days: 'next tuesday' is not a date")
    refused("{{ now | add_days('soon') }}", scope, match="add_days: 'soon' is not a number")
    refused("{{ '2024' | parse_date('%d/%m') }}", scope, match="parse_date")


def test_json_filter_handles_dates_decimals_uuids_and_does_not_escape_html():
    scope = {"order": {"at": NOW, "on": date(2024, 1, 31), "total": Decimal("12.50"), "id": uuid.UUID(int=1)}}
    assert render("{{ order | json }}", scope) == (
        '{"at": "2024-01-31T10:00:00+00:00", "on": "2024-01-31", "total": 12.5, '
        '"id": "00000000-0000-0000-0000-000000000001"}'
    )
    assert render("{{ {'html': '<b>&</b>', 'name': 'Zoë'} | json }}", {}) == '{"html": "<b>&</b>", "name": "Zoë"}'
    assert render("{{ [1, 2] | json(indent=2) }}", {}) == "[\n  1,\n  2\n]"


def test_from_json_parses_text_and_refuses_bad_json():
    assert render("{{ body | from_json }}", {"body": '{"a": [1, 2.5, null]}'}) == {"a": [1, 2.5, None]}
    assert render("{{ (body | from_json).a[1] }}", {"body": '{"a": [1, 2.5]}'}) == 2.5
    assert render("{{ body | from_json }}", {"body": ""}) is None
    refused("{{ body | from_json }}", {"body": "{oops"}, match=r"from_json: invalid JSON .*line 1 column 2")


def test_jinja_built_in_filters_remain(scope):
    assert render("{{ params.customer.name | upper }}", scope) == "ADA"
    assert render("{{ params.missing | default('n/a') }}", scope) == "n/a"
    assert render("{{ params.tags | join(', ') }}", scope) == "a, b"
    assert render("{{ [3, 1, 2] | sort | first }}", scope) == 1
    assert render("{{ steps.search.items | sum(attribute='id') }}", scope) == 3
    assert render("{{ '<b>' | tojson }}", scope) == '"\\u003cb\\u003e"'


# --- conditions ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        (None, True),
        ("", True),
        ("   ", True),
        ("{{ params.amount > 0 }}", True),
        ("{{ params.amount > 10 }}", False),
        ("{{ params.tags }}", True),
        ("{{ [] }}", False),
        ("{{ params.missing }}", False),
        ("{{ 'false' }}", False),
        ("{{ 'False' }}", False),
        ("{{ '0' }}", False),
        ("{{ 'no' }}", True),
        ("false", False),
        ("{% if params.paid %}yes{% endif %}", True),
        ("{% if not params.paid %}yes{% endif %}", False),
        ("{{ params.amount }} > 3", True),
    ],
)
def test_conditions(scope, source, expected):
    assert evaluate_condition(source, scope) is expected


def test_a_condition_that_fails_raises_rather_than_guessing(scope):
    with pytest.raises(ExpressionError, match="division by zero"):
        evaluate_condition("{{ 1 / 0 }}", scope)


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("{{ 1 / 0 }}", "division by zero"),
        ("{{ params.amount + 'x' }}", "wrong type: unsupported operand"),
        ("{{ params.missing + 1 }}", "undefined value"),
        ("{{ nobody() }}", "'nobody' is undefined"),
        ("{{ 'abc'.index('z') }}", "invalid value: substring not found"),
        ("{{ 1 + }}", r"syntax error: unexpected 'end of template' \(line 1\)"),
    ],
)
def test_failures_become_expression_errors_that_name_the_expression(scope, source, fragment):
    error = refused(source, scope, match=fragment)
    assert source.strip() in error.message
    assert error.extra["expression"] == source


def test_an_error_in_one_value_of_a_config_names_that_expression(scope):
    config = {"ok": "{{ params.amount }}", "bad": "total: {{ params.amount / 0 }}"}
    error = refused(config, scope, match="division by zero")
    assert 'in "total: {{ params.amount / 0 }}"' in error.message


# --- the sandbox --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("{{ ''.__class__.__mro__ }}", "'__class__' of a str is not allowed"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "'__class__'"),
        ("{{ cycler.__init__ }}", "'__init__'"),
        ("{{ cycler.__init__.__globals__ }}", "'__init__'"),
        ("{{ joiner.__init__ }}", "'__init__'"),
        ("{{ namespace.__init__ }}", "'__init__'"),
        ("{{ self.__init__ }}", "'__init__'"),
        ("{{ self._TemplateReference__context }}", "_TemplateReference__context"),
        ("{{ lipsum.__globals__ }}", "'__globals__'"),
        ("{{ range.__globals__ }}", "'__globals__'"),
        ("{{ params['__class__'] }}", "'__class__'"),
        ("{{ params|attr('__class__') }}", "'__class__'"),
        ("{{ dict.mro() }}", "'mro'"),
        ("{{ '{0.__class__}'.format(1) }}", "'__class__'"),
        ("{{ '{x.__class__}'.format_map({'x': 1}) }}", "'__class__'"),
        ("{% for x in [1] %}{{ loop.__class__ }}{% endfor %}", "'__class__'"),
        ("{{ params.tags.append('c') }}", "'append' of a list is not allowed"),
        ("{{ params.customer.update({'plan': 'free'}) }}", "'update'|undefined"),
    ],
)
def test_sandbox_escapes_are_refused(scope, source, fragment):
    error = refused(source, scope, match=fragment)
    assert error.message.startswith(("sandbox:", "undefined value", "wrong type"))
    assert scope["params"]["tags"] == ["a", "b"]
    assert scope["params"]["customer"]["plan"] == "pro"


def test_graphql_style_dunder_keys_in_data_are_still_readable():
    body = {"__typename": "Order", "_id": 7}
    assert render("{{ body.__typename }}-{{ body._id }}", {"body": body}) == "Order-7"


@pytest.mark.parametrize("tag", ["{% include 'other' %}", "{% import 'm' as m %}", "{% extends 'base' %}"])
def test_loading_other_templates_is_refused(tag):
    assert "is not allowed in expressions" in check(tag)
    refused(tag, match="is not allowed in expressions")


def test_range_is_capped():
    assert render("{{ range(100000) | list | length }}", {}) == 100000
    refused("{{ range(10 ** 9) | list }}", match=r"range\(\) is limited to 100000")
    refused("{{ range(10 ** 100) }}", match=r"range\(\) is limited")


@pytest.mark.parametrize(
    ("source", "fragment"),
    [
        ("{{ 'a' * 10 ** 9 }}", "result of '\\*' would be larger than the output limit"),
        ("{{ 10 ** 9 * 'a' }}", "result of '\\*' would be larger than the output limit"),
        ("{{ [1] * 10 ** 9 }}", "result of '\\*' would be larger than the output limit"),
        ("{{ 10 ** (10 ** 8) }}", "larger than 4096 bits"),
        ("{{ 2 ** 5000 }}", "larger than 4096 bits"),
        ("{% set n = 2 ** 4000 %}{{ n * n }}", "larger than 4096 bits"),
        ("{{ '%999999999d' % 1 }}", "formatted text would be larger"),
        ("{{ '%*d' % (999999999, 1) }}", "formatted text would be larger"),
        ("{{ '%s' | format('x' * 1000000) * 2 }}", "larger than the output limit"),
        ("{{ '{:>999999999}'.format(1) }}", "format\\(\\) width"),
        ("{{ '{0}{0}{0}{0}'.format('x' * 500000) }}", "result of format\\(\\)"),
        ("{{ 'a' | center(10 ** 9) }}", "center\\(\\)"),
        ("{{ 'a'.ljust(10 ** 9) }}", "str.ljust\\(\\)"),
        ("{{ 'a'.zfill(10 ** 9) }}", "str.zfill\\(\\)"),
        ("{{ ('\t' * 1000).expandtabs(10 ** 6) }}", "str.expandtabs\\(\\)"),
        ("{{ ('a' * 100000).replace('', 'b' * 100) }}", "str.replace\\(\\)"),
        ("{{ ('a' * 100000) | replace('a', 'b' * 100) }}", "replace\\(\\)"),
        ("{{ 'x'.join(['a' * 1000] * 2000) }}", "larger than the output limit"),
        ("{{ 'x'.join(['a' * 600000, 'b' * 600000]) }}", "str.join\\(\\)"),
        ("{{ (['a' * 1000] * 2000) | join }}", "join\\(\\)"),
        ("{{ ('a\\n' * 1000) | indent(10 ** 4) }}", "indent\\(\\)"),
        ("{{ ('a ' * 100000) | wordwrap(1, wrapstring='x' * 100) }}", "wordwrap\\(\\)"),
        ("{{ (1).to_bytes(10 ** 9, 'big') }}", "int.to_bytes\\(\\)"),
        ("{{ range(10) | slice(10 ** 9) | list }}", "slice\\(\\) is limited"),
        ("{{ [1] | batch(10 ** 9, 0) | list }}", "batch\\(\\) is limited"),
        ("{{ [1, 2] | tojson(indent=10 ** 9) }}", "JSON indent"),
        ("{{ ('a' * 600000) ~ ('a' * 600000) }}", "joined text would be larger"),
        ("{{ ('a' * 600000) + ('a' * 600000) }}", "result of '\\+' would be larger"),
    ],
)
def test_exploding_operations_are_refused_before_they_run(source, fragment):
    refused(source, match=fragment)


def test_power_is_left_associative_so_a_power_tower_stays_small():
    # Jinja reads 10 ** 10 ** 8 as (10 ** 10) ** 8: a small number, not a refused one.
    assert render("{{ 10 ** 10 ** 8 }}", {}) == 10**80


@pytest.mark.parametrize(
    "growth",
    [
        "{% set ns.s = ns.s ~ ns.s %}",
        "{% set ns.s = ns.s + ns.s %}",
        "{% set ns.s = ns.s * 2 %}",
        "{% set ns.s = [ns.s, ns.s] | join %}",
    ],
)
def test_doubling_text_in_a_loop_is_refused(growth):
    source = "{% set ns = namespace(s='x') %}{% for i in range(64) %}" + growth + "{% endfor %}{{ ns.s | length }}"
    refused(source, match="larger than the output limit")


DOUBLED = "{% set ns = namespace(x=[1], y=[1]) %}{% for i in range(64) %}{% set ns.x = [ns.x, ns.x] %}{% set ns.y = [ns.y, ns.y] %}{% endfor %}"


@pytest.mark.parametrize(
    "use",
    [
        "{{ ns.x }}",
        "text {{ ns.x }}",
        "{{ ns.x | json }}",
        "{{ ns.x | string }}",
        "{{ ns.x | upper }}",
        "{{ '%s' % (ns.x,) }}",
        "{{ '{}'.format(ns.x) }}",
        "{{ ns.x == ns.y }}",
        "{{ ns.x in [ns.y] }}",
        "{{ [ns.x, ns.y] | sort }}",
        "{{ [ns.x].index(ns.y) }}",
        "{{ ns.x is eq(ns.y) }}",
    ],
)
def test_values_that_repeat_themselves_exponentially_are_refused(use):
    # Each pass doubles the list without copying, so writing it out or comparing it would never end.
    refused(DOUBLED + use, match="larger than the output limit")


def test_shared_but_modest_values_are_fine():
    assert render("{{ [a, a, a] }}", {"a": [1, 2]}) == [[1, 2], [1, 2], [1, 2]]
    assert render("{{ [a, a] == [[1, 2], [1, 2]] }}", {"a": [1, 2]}) is True
    assert render("{% set a = [1, 2] %}{{ [a, a] }}", {}) == "[[1, 2], [1, 2]]"


def test_recursion_is_refused():
    refused("{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}", match="recurses too deeply")


# --- limits -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}",
        "{% set r = range(100000) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}",
        "{% set r = range(100000) | list %}{{ r | map('string') | map('int') | list | length }}"
        "{% for i in r %}{% for j in r %}{{ '' }}{% endfor %}{% endfor %}",
        "{% for i in range(100000) %}{% if range(100000) | sum %}{% endif %}{% endfor %}",
    ],
)
def test_render_time_is_bounded(settings, source):
    settings.ENGINE_ROOM_EXPRESSION_TIME_LIMIT = 0.3
    started = time.monotonic()
    with pytest.raises(ExpressionError, match=r"took too long \(limit 0.3 s\)"):
        render(source, {})
    assert time.monotonic() - started < QUICK


def test_the_time_limit_covers_a_whole_config(settings):
    settings.ENGINE_ROOM_EXPRESSION_TIME_LIMIT = 0.3
    slow = "{% for i in range(100000) %}{% for j in range(20) %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    with pytest.raises(ExpressionError, match="took too long"):
        render({"a": slow, "b": slow, "c": slow, "d": slow, "e": slow, "f": slow}, {})
    assert time.monotonic() - started < QUICK


def test_output_size_is_bounded(settings):
    settings.ENGINE_ROOM_EXPRESSION_OUTPUT_LIMIT = 1000
    assert len(render("{{ 'x' * 900 }}", {})) == 900
    assert len(render("{% for i in range(90) %}0123456789{% endfor %}", {})) == 900
    refused("{{ 'x' * 1001 }}", match=r"output limit \(1000 bytes\)")
    refused("{% for i in range(101) %}0123456789{% endfor %}", match=r"rendered text would be larger")
    refused("{% for i in range(101) %}{{ '0123456789' }}{% endfor %}", match=r"rendered text would be larger")
    refused("{% set x %}{% for i in range(400) %}{{ i }}{% endfor %}{% endset %}ok", match="rendered text")


def test_the_output_limit_counts_bytes(settings):
    settings.ENGINE_ROOM_EXPRESSION_OUTPUT_LIMIT = 1000
    assert render("a{{ 'é' * 499 }}", {}) == "a" + "é" * 499
    refused("a{{ 'é' * 600 }}", match="rendered text would be larger")


def test_the_output_limit_covers_a_whole_config(settings):
    settings.ENGINE_ROOM_EXPRESSION_OUTPUT_LIMIT = 1000
    half = "{{ 'x' * 600 }}!"
    assert len(render({"a": half}, {})["a"]) == 601
    refused({"a": half, "b": half}, match="rendered text would be larger")


def test_large_data_passes_through_a_lone_expression_but_not_into_text(settings):
    settings.ENGINE_ROOM_EXPRESSION_OUTPUT_LIMIT = 1000
    body = "x" * 5000
    assert render("{{ steps.fetch.body }}", {"steps": {"fetch": {"body": body}}}) is body
    refused("Body: {{ steps.fetch.body }}", {"steps": {"fetch": {"body": body}}}, match="larger than the output limit")


def test_a_large_list_from_a_step_is_handed_on_quickly():
    rows = [{"id": index, "name": f"row {index}", "tags": ["a", "b"]} for index in range(200_000)]
    started = time.monotonic()
    assert render({"rows": "{{ steps.query.rows }}"}, {"steps": {"query": {"rows": rows}}})["rows"] is rows
    assert render("{{ steps.query.rows | length }}", {"steps": {"query": {"rows": rows}}}) == 200_000
    assert time.monotonic() - started < QUICK


# --- check, names_used, step_keys_used ----------------------------------------------------------


def test_check_accepts_good_templates_and_plain_text():
    assert check("{{ params.amount > 0 }}") is None
    assert check("Hello {{ params.name | upper }}{% if x %}!{% endif %}") is None
    assert check("just text") is None
    assert check("{{ {'a': {'b': 1}} }}") is None


@pytest.mark.parametrize(
    ("source", "fragments"),
    [
        ("{{ 1 + }}", ["unexpected", "(line 1)"]),
        ("Hello {{ params.name", ["unexpected end of template", "(line 1)"]),
        ("Hello\n\n{{ params.name | nope }}", ["No filter named 'nope'", "(line 3)"]),
        ("\n{{ params. }}", ["(line 2)"]),
        ("{% if x %}yes", ["endif", "(line 1)"]),
        ("{% for %}", ["(line 1)"]),
        ("{{ a }} {{ b ) }}", ["unexpected ')'"]),
    ],
)
def test_check_explains_syntax_errors(source, fragments):
    message = check(source)
    assert message is not None
    for fragment in fragments:
        assert fragment in message


def test_names_used():
    source = "{% set total = params.a + 1 %}{% for x in range(3) %}{{ loop.index }}{{ x }}{% endfor %}"
    assert names_used(source + "{{ total }}{{ steps['b'].c }}{{ secrets.KEY }}") == {"params", "steps", "secrets"}
    assert names_used("{{ widget }}") == {"widget"}
    assert names_used("no expression") == set()
    with pytest.raises(ExpressionError, match="syntax error"):
        names_used("{{ 1 + }}")


def test_step_keys_used():
    source = "{{ steps.a.x }}{{ steps['b'] }}{{ steps.get('c') }}{{ params.steps.z }}{% for s in steps %}{% endfor %}"
    assert step_keys_used(source) == {"a", "b", "c"}
    assert step_keys_used("{{ steps.invoice.id }} and {{ steps.invoice.total }}") == {"invoice"}
    assert step_keys_used("{{ params.amount }}") == set()


# --- secrets ------------------------------------------------------------------------------------

SECRETS = {"API_KEY": 'sk_live_a"b/c d', "PIN": "4321"}


@pytest.fixture
def secrets():
    loaded = []

    def loader(name):
        loaded.append(name)
        return SECRETS.get(name)

    scope = SecretScope(loader)
    scope.loaded = loaded
    return scope


def test_a_secret_used_in_a_header_is_masked_in_the_masked_copy(secrets):
    config = {
        "headers": {"Authorization": "Bearer {{ secrets.API_KEY }}", "X-Pin": "{{ secrets.PIN | int }}"},
        "body": "{{ {'key': secrets.API_KEY} | json }}",
        "url": "https://api.example.com/?key={{ secrets.API_KEY | urlencode }}",
        "note": "plain",
    }
    rendered = render(config, {"secrets": secrets})
    assert rendered["headers"]["Authorization"] == 'Bearer sk_live_a"b/c d'
    masked = secrets.mask(rendered)
    assert masked == {
        "headers": {"Authorization": "Bearer ••••", "X-Pin": "••••"},
        "body": '{"key": "••••"}',
        "url": "https://api.example.com/?key=••••",
        "note": "plain",
    }
    assert rendered["headers"]["Authorization"] == 'Bearer sk_live_a"b/c d'


def test_secrets_are_loaded_once_and_only_when_used(secrets):
    render({"a": "{{ secrets.PIN }}", "b": "{{ secrets['PIN'] }}-{{ secrets.PIN }}"}, {"secrets": secrets})
    assert secrets.loaded == ["PIN"]
    assert secrets.mask("key sk_live_a\"b/c d") == 'key sk_live_a"b/c d'


def test_unknown_secrets_render_empty(secrets):
    assert render("[{{ secrets.NOPE }}]", {"secrets": secrets}) == "[]"
    assert render("{{ secrets.NOPE }}", {"secrets": secrets}) is None
    assert render("{{ secrets.NOPE is defined }}", {"secrets": secrets}) is False


def test_secret_names_that_look_like_methods_are_secrets():
    scope = SecretScope({"get": "g-value", "mask": "m-value"}.get)
    assert render("{{ secrets.get }}/{{ secrets.mask }}", {"secrets": scope}) == "g-value/m-value"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{{ secrets }}", ""),
        ("all: {{ secrets }}", "all: "),
        ("{{ secrets | list }}", []),
        ("{{ secrets | string }}", ""),
        ("{{ secrets | json }}", '""'),
        ("{{ secrets | pprint }}", "<SecretScope>"),
    ],
)
def test_the_secrets_object_itself_reveals_nothing(secrets, source, expected):
    render("{{ secrets.API_KEY }}", {"secrets": secrets})
    assert render(source, {"secrets": secrets}) == expected


@pytest.mark.parametrize(
    "source",
    ["{{ secrets.__dict__ }}", "{{ secrets._values }}", "{{ secrets['__class__'] }}", "{{ secrets | attr('_loader') }}"],
)
def test_the_secrets_object_cannot_be_opened(secrets, source):
    render("{{ secrets.API_KEY }}", {"secrets": secrets})
    error = refused(source, {"secrets": secrets}, match="not allowed")
    assert "sk_live" not in error.message


def test_a_secret_in_an_error_message_is_masked(secrets):
    error = refused("{{ secrets.API_KEY | parse_date }}", {"secrets": secrets}, match="is not a date")
    assert "sk_live" not in error.message
    assert "••••" in error.message


def test_mask_returns_a_copy_even_before_any_secret_is_read(secrets):
    value = {"headers": {"a": "b"}, "list": [1, "x"]}
    masked = secrets.mask(value)
    assert masked == value
    assert masked is not value and masked["headers"] is not value["headers"] and masked["list"] is not value["list"]


def test_mask_for_a_caller_that_copies_skips_the_walk_only_while_no_secret_is_read(secrets):
    """A step log is serialised at once, so the engine asks for no copy; a revealed secret is masked all the same."""
    value = {"headers": {"token": "4321"}, "list": [1, "x4321"]}
    assert secrets.mask(value, copy=False) is value
    render("{{ secrets.PIN }}", {"secrets": secrets})
    assert secrets.mask(value, copy=False) == {"headers": {"token": "••••"}, "list": [1, "x••••"]}
    assert value["headers"]["token"] == "4321"


def test_mask_copies_without_touching_other_values(secrets):
    render("{{ secrets.PIN }}", {"secrets": secrets})
    value = {"pin": 4321, "pins": ["4321", "x4321y", 1234], "when": NOW, "ok": True}
    assert secrets.mask(value) == {"pin": "••••", "pins": ["••••", "x••••y", 1234], "when": NOW, "ok": True}
    assert value["pins"][1] == "x4321y"
