"""The expression language of workflow definitions: Jinja2 templates rendered in a bounded sandbox."""

import functools
import json
import math
import re
import types
import uuid
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, ValuesView
from contextvars import ContextVar
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from time import monotonic
from urllib.parse import quote, quote_plus

from django.conf import settings
from jinja2 import ChainableUndefined, TemplateSyntaxError, meta, nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.filters import (
    do_batch,
    do_center,
    do_format,
    do_indent,
    do_replace,
    do_tojson,
    do_urlize,
    do_wordwrap,
    make_attrgetter,
    sync_do_slice,
)
from jinja2.parser import Parser
from jinja2.runtime import Macro, Undefined
from jinja2.sandbox import (
    MAX_RANGE,
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from jinja2.utils import pass_environment, pass_eval_context
from jinja2.visitor import NodeTransformer
from markupsafe import Markup
from requests.utils import requote_uri

from config.errors import ExpressionError

MASK = "••••"
MAX_INT_BITS = 4096
_MAX_JSON_INDENT = 16
_TICK_EVERY = 256
# A lone expression may hand on a value that repeats a part of itself (the same list twice) up to
# this many times its own size; beyond that, and past the output limit, it is an amplification.
_MAX_SHARING = 4
_FALSE_TEXT = frozenset({"", "false", "0"})
_LONE = re.compile(r"\s*\{\{-?(.*?)-?\}\}\s*", re.DOTALL)
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")
_PERCENT_FIELD = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?[hlL]?[a-zA-Z%]")


# --- budget -------------------------------------------------------------------------------------


class _Budget:
    """The time and output allowance of one render() call, shared by every string it renders."""

    __slots__ = ("seconds", "limit", "deadline", "written", "finalized", "checked")

    def __init__(self):
        self.seconds = float(getattr(settings, "ENGINE_ROOM_EXPRESSION_TIME_LIMIT", 2.0))
        self.limit = int(getattr(settings, "ENGINE_ROOM_EXPRESSION_OUTPUT_LIMIT", 1024 * 1024))
        self.deadline = monotonic() + self.seconds
        self.written = 0
        self.finalized = 0
        # Values already passed by _comparable, kept alive so that their ids stay theirs.
        self.checked: dict[int, object] = {}

    def tick(self) -> None:
        if monotonic() > self.deadline:
            raise ExpressionError(f"expression took too long (limit {self.seconds:g} s)")


_budget: ContextVar[_Budget | None] = ContextVar("expression_budget", default=None)


def _tick() -> None:
    budget = _budget.get()
    if budget is not None:
        budget.tick()


def _limit() -> int:
    budget = _budget.get()
    if budget is not None:
        return budget.limit
    return int(getattr(settings, "ENGINE_ROOM_EXPRESSION_OUTPUT_LIMIT", 1024 * 1024))


def _too_large(what: str) -> ExpressionError:
    return ExpressionError(f"{what} would be larger than the output limit ({_limit()} bytes)")


def _refuse_size(size: int, what: str) -> None:
    if size > _limit():
        raise _too_large(what)


def _bounded_list(iterable) -> list:
    items = []
    limit = _limit()
    for index, item in enumerate(iterable):
        if index % _TICK_EVERY == 0:
            _tick()
            if index > limit:
                raise _too_large("a list")
        items.append(item)
    return items


_LEAF_TYPES = frozenset({str, int, float, bool, type(None), Decimal, datetime, date, time, uuid.UUID})
_CONTAINER_TYPES = (Mapping, list, tuple, set, frozenset)
_PATH_TYPES = _LEAF_TYPES | {list, dict}
# A leaf written out in fewer characters than this is counted wherever it appears; a longer one is
# counted once per object, so that a list holding the same long text a million times shows as shared.
_SMALL_LEAF = 64


def _leaf_size(value) -> int:
    kind = type(value)
    if kind is str or kind is bytes:
        return len(value) + 2
    if kind is int:
        return value.bit_length() * 3 // 10 + 2
    if isinstance(value, str | bytes):
        return len(value) + 2
    return 24


class _Measure:
    """Approximates the length of a value written out as text, counting shared parts each time they appear."""

    def __init__(self, limit: int | None = None, what: str = "the text"):
        self.limit = limit
        self.what = what
        self.sizes: dict[int, int] = {}
        self.large_leaves: set[int] = set()
        self.distinct = 0
        self.visits = 0

    def size(self, value) -> int:
        """The written-out size of value; `distinct` grows by the size of the parts seen for the first time."""
        if type(value) in _LEAF_TYPES or not isinstance(value, _CONTAINER_TYPES):
            size = _leaf_size(value)
            self._count_leaf(value, size)
            self._check(size)
            return size
        known = self.sizes.get(id(value))
        if known is not None:
            return known
        self.visits += 1
        if self.visits % 1024 == 0:
            _tick()
        own = total = 2 + 2 * len(value)
        parts = value.values() if isinstance(value, Mapping) else value
        if isinstance(value, Mapping):
            for name in value:
                total += self.size(name) if type(name) is not str else len(name) + 2
        leaf_types, large_leaves, small_leaf = _LEAF_TYPES, self.large_leaves, _SMALL_LEAF
        for part in parts:
            kind = type(part)
            if kind in leaf_types:
                if kind is str:
                    size = len(part) + 2
                elif kind is int:
                    size = part.bit_length() * 3 // 10 + 2
                else:
                    size = 24
                if size < small_leaf:
                    self.distinct += size
                elif id(part) not in large_leaves:
                    large_leaves.add(id(part))
                    self.distinct += size
                total += size
            else:
                total += self.size(part)
                self._check(total)
        self._check(total)
        self.distinct += own
        self.sizes[id(value)] = total
        return total

    def _count_leaf(self, leaf, size: int) -> None:
        if size < _SMALL_LEAF:
            self.distinct += size
        elif id(leaf) not in self.large_leaves:
            self.large_leaves.add(id(leaf))
            self.distinct += size

    def _check(self, total: int) -> None:
        if self.limit is not None and total > self.limit:
            raise _too_large(self.what)


def _check_text(value, what: str = "the text") -> None:
    """Refuse to write out a list or dict whose text would exceed the output limit (shared parts included)."""
    if isinstance(value, Mapping | list | tuple | set | frozenset):
        _Measure(_limit(), what).size(value)


# --- text, JSON and native values ---------------------------------------------------------------


def _json_default(value):
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Undefined):
        return None
    if isinstance(value, SecretScope):
        return ""
    if isinstance(value, set | frozenset | range | Iterator | KeysView | ValuesView | ItemsView):
        return _bounded_list(value)
    raise TypeError(f"a {type(value).__name__} cannot be written as JSON")


def _dumps(value, indent=None) -> str:
    _check_text(value, "the JSON text")
    return json.dumps(value, default=_json_default, ensure_ascii=False, indent=indent)


def _text(value) -> str:
    """How a value reads inside text: empty for none, JSON for lists and dicts, ISO 8601 for dates."""
    if isinstance(value, str):
        return str(value)
    if value is None or isinstance(value, Undefined | SecretScope):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Mapping | list | tuple | range | Iterator | KeysView | ValuesView | ItemsView):
        if not isinstance(value, Mapping | list | tuple):
            value = _bounded_list(value)
        return _dumps(value)
    if isinstance(value, int | float | Decimal | uuid.UUID):
        return str(value)
    raise _not_data(value)


def _not_data(value) -> ExpressionError:
    """A value that is not data (a function, a class, one of Jinja's helpers) never leaves an expression:
    it would reach a config or a log as "<class …>"."""
    return ExpressionError(f"the value is a {type(value).__name__}, not data; call it or read a field of it")


def _native(value, memo: dict | None = None):
    """A lone expression's value made plain: undefined becomes None, generators become lists."""
    kind = type(value)
    if kind in _LEAF_TYPES:
        return value
    if memo is None:
        memo = {}
    key = id(value)
    if key in memo:
        return memo[key]
    if kind is list or kind is tuple:
        items = None
        for index, item in enumerate(value):
            if type(item) in _LEAF_TYPES:
                continue
            plain = _native(item, memo)
            if plain is not item:
                if items is None:
                    items = list(value)
                items[index] = plain
        result = value if items is None else items if kind is list else tuple(items)
    elif kind is dict:
        changed = None
        for name, item in value.items():
            if type(item) in _LEAF_TYPES:
                continue
            plain = _native(item, memo)
            if plain is not item:
                if changed is None:
                    changed = dict(value)
                changed[name] = plain
        result = value if changed is None else changed
    elif isinstance(value, str):
        result = str(value)
    elif isinstance(value, Undefined):
        result = None
    elif isinstance(value, SecretScope):
        result = ""
    elif isinstance(value, range | Iterator | KeysView | ValuesView | ItemsView):
        result = [_native(item, memo) for item in _bounded_list(value)]
    elif isinstance(value, set | frozenset):
        result = [_native(item, memo) for item in _bounded_list(value)]
    elif isinstance(value, Mapping):
        result = {name: _native(item, memo) for name, item in value.items()}
    elif isinstance(value, int | float | Decimal):  # bool and number subclasses
        result = value
    else:
        raise _not_data(value)
    memo[key] = result
    return result


def _check_native(value) -> None:
    measure = _Measure()
    expanded = measure.size(value)
    if expanded > _limit() and expanded > _MAX_SHARING * measure.distinct:
        raise _too_large("a value made of repeated parts, written out,")


def _comparable(value):
    """Passes a value on to a comparison or a hash, refusing one that repeats shared parts past the limit."""
    # Python compares and hashes nested lists and tuples part by part, in C, where the clock is never
    # checked: a list built as [x, x] sixty times over would take longer than the universe.
    if isinstance(value, list | tuple | dict | set | frozenset):
        budget = _budget.get()
        checked = budget.checked if budget is not None else None
        if checked is None or id(value) not in checked:
            _check_native(value)
            if checked is not None:
                checked[id(value)] = value
    return value


# --- filters ------------------------------------------------------------------------------------


def _loop_items(value):
    """Iterates a for loop's sequence while watching the clock; a missing (None) sequence is empty."""
    if value is None:
        return
    for index, item in enumerate(value):
        if index % _TICK_EVERY == 0:
            _tick()
        yield item


def _concat(values) -> str:
    """The `~` operator, refused past the output limit."""
    parts = [_text(value) for value in values]
    _refuse_size(sum(map(len, parts)), "the joined text")
    return "".join(parts)


def _as_moment(value, filter_name: str):
    if value is None or isinstance(value, Undefined) or value == "":
        return None
    if isinstance(value, datetime | date):
        return value
    if isinstance(value, str):
        text = value.strip()
        try:
            if _DATE_ONLY.fullmatch(text):
                return date.fromisoformat(text)
            return datetime.fromisoformat(text)
        except ValueError:
            pass
    shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "…"
    raise ExpressionError(f"{filter_name}: {shown} is not a date (expected ISO 8601 like 2024-05-31T14:30:00Z)")


def _as_number(value, filter_name: str) -> float:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise ExpressionError(f"{filter_name}: {value!r} is not a number")


def _shifter(unit: str) -> Callable:
    filter_name = f"add_{unit}"

    def shift(value, n):
        moment = _as_moment(value, filter_name)
        if moment is None:
            return None
        delta = timedelta(**{unit: _as_number(n, filter_name)})
        if unit != "days" and not isinstance(moment, datetime):
            moment = datetime.combine(moment, time())
        return moment + delta

    shift.__name__ = filter_name
    shift.__doc__ = f"A datetime, date or ISO string moved by n {unit} (negative n moves back)."
    return shift


def _format_date(value, fmt: str = "%Y-%m-%d") -> str:
    """A datetime, date or ISO string written with strftime's format; empty for none."""
    moment = _as_moment(value, "format_date")
    return "" if moment is None else moment.strftime(str(fmt))


def _parse_date(value, fmt: str | None = None):
    """An ISO 8601 string (or one in strptime's fmt) as a datetime, or a date when it has no time."""
    if fmt is None or isinstance(value, datetime | date):
        return _as_moment(value, "parse_date")
    if value is None or isinstance(value, Undefined) or value == "":
        return None
    try:
        return datetime.strptime(str(value), str(fmt))
    except ValueError as exc:
        raise ExpressionError(f"parse_date: {exc}") from None


def _to_json(value, indent=None) -> str:
    """The value as JSON text (dates as ISO 8601, decimals as numbers), not HTML-escaped."""
    return _dumps(value, indent=_checked_indent(indent))


def _from_json(value):
    """JSON text parsed into lists, dicts and values; none for empty text, as is when already parsed."""
    if value is None or isinstance(value, Undefined) or value == "":
        return None
    if not isinstance(value, str | bytes):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ExpressionError(f"from_json: invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None


def _checked_indent(indent):
    width = len(indent) if isinstance(indent, str) else indent
    if isinstance(width, int) and width > _MAX_JSON_INDENT:
        raise ExpressionError(f"a JSON indent of more than {_MAX_JSON_INDENT} is not allowed")
    return indent


def _center(value, width=80):
    if isinstance(width, int):
        _refuse_size(width, "center()")
    return do_center(value, width)


def _indent(s, width=4, first=False, blank=False):
    text = str(s)
    step = len(width) if isinstance(width, str) else width
    if isinstance(step, int):
        _refuse_size(len(text) + (text.count("\n") + 1) * step, "indent()")
    return do_indent(s, width, first, blank)


@pass_eval_context
def _replace(eval_ctx, s, old, new, count=None):
    text, old_text, new_text = str(s), str(old), str(new)
    hits = len(text) + 1 if not old_text else text.count(old_text)
    if isinstance(count, int):
        hits = min(hits, max(count, 0))
    _refuse_size(len(text) + hits * (len(new_text) - len(old_text)), "replace()")
    return do_replace(eval_ctx, s, old, new, count)


@pass_eval_context
def _join(eval_ctx, value, d="", attribute=None):
    items = _bounded_list(value)
    if attribute is not None:
        getter = make_attrgetter(eval_ctx.environment, attribute)
        items = [getter(item) for item in items]
    for item in items:
        _check_text(item, "join()")
    texts = [str(item) for item in items]
    separator = str(d)
    _refuse_size(sum(map(len, texts)) + len(separator) * max(len(texts) - 1, 0), "join()")
    return separator.join(texts)


@pass_environment
def _sum(environment, iterable, attribute=None, start=0):
    items = _bounded_list(iterable)
    if attribute is not None:
        getter = make_attrgetter(environment, attribute)
        items = [getter(item) for item in items]
    total = start
    for index, item in enumerate(items):
        if index % _TICK_EVERY == 0:
            _tick()
        _check_binop("+", total, item)
        total = total + item
    return total


def _format(value, *args, **kwargs):
    _check_percent(str(value), kwargs or args)
    return do_format(value, *args, **kwargs)


@pass_environment
def _wordwrap(environment, s, width=79, break_long_words=True, wrapstring=None, break_on_hyphens=True):
    text = str(s)
    joint = environment.newline_sequence if wrapstring is None else str(wrapstring)
    if isinstance(width, int) and width > 0:
        # Greedy wrapping fills two consecutive lines with more than `width` characters.
        lines = 2 * len(text) // width + text.count("\n") + 2
        _refuse_size(len(text) + lines * len(joint), "wordwrap()")
    return do_wordwrap(environment, s, width, break_long_words, wrapstring, break_on_hyphens)


@pass_eval_context
def _tojson(eval_ctx, value, indent=None):
    _check_text(value, "tojson()")
    return do_tojson(eval_ctx, value, _checked_indent(indent))


@pass_eval_context
def _urlize(eval_ctx, value, trim_url_limit=None, nofollow=False, target=None, rel=None, extra_schemes=None):
    text = str(value)
    per_link = len(str(target or "")) + len(str(rel or "")) + 64
    _refuse_size(2 * len(text) + (text.count(" ") + text.count("\n") + 1) * per_link, "urlize()")
    return do_urlize(eval_ctx, value, trim_url_limit, nofollow, target, rel, extra_schemes)


def _slice(value, slices, fill_with=None):
    if isinstance(slices, int) and slices > MAX_RANGE:
        raise ExpressionError(f"slice() is limited to {MAX_RANGE} slices")
    return sync_do_slice(value, slices, fill_with)


def _batch(value, linecount, fill_with=None):
    if isinstance(linecount, int) and linecount > MAX_RANGE:
        raise ExpressionError(f"batch() is limited to batches of {MAX_RANGE} items")
    return do_batch(value, linecount, fill_with)


def _guard_text_input(original: Callable, filter_name: str) -> Callable:
    """Wraps a filter that writes its input out as text, so a huge (or self-repeating) list is refused first."""
    # functools.wraps copies jinja_pass_arg, so Jinja passes the wrapper the same leading argument.
    position = 1 if hasattr(original, "jinja_pass_arg") else 0

    @functools.wraps(original)
    def guarded(*args, **kwargs):
        if len(args) > position:
            _check_text(args[position], f"the input of {filter_name}")
        return original(*args, **kwargs)

    return guarded


def _guard_compared_input(original: Callable) -> Callable:
    """Wraps a filter that compares or hashes its items, so self-repeating values are refused first."""
    position = 1 if hasattr(original, "jinja_pass_arg") else 0

    @functools.wraps(original)
    def guarded(*args, **kwargs):
        for value in (*args[position:], *kwargs.values()):
            _comparable(value)
        return original(*args, **kwargs)

    return guarded


_COMPARING_FILTERS = (
    "dictsort", "groupby", "max", "min", "reject", "rejectattr", "select", "selectattr", "sort", "unique",
)  # fmt: skip

_TEXT_FILTERS = (
    "capitalize", "center", "e", "escape", "forceescape", "format", "indent", "json", "lower", "pprint",
    "replace", "safe", "string", "striptags", "title", "trim", "truncate", "upper", "urlencode", "urlize",
    "wordcount", "wordwrap", "xmlattr",
)  # fmt: skip


# --- operator and call hooks --------------------------------------------------------------------


def _check_binop(operator: str, left, right) -> None:
    """Refuse arithmetic whose result would be too big before Python spends the memory on it."""
    if operator == "**":
        if isinstance(left, int) and isinstance(right, int) and right > 0 and abs(left) > 1:
            if right > MAX_INT_BITS or right * math.log2(abs(left)) > MAX_INT_BITS:
                raise ExpressionError(f"'**' would produce a number larger than {MAX_INT_BITS} bits")
    elif operator == "*":
        if isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
                raise ExpressionError(f"'*' would produce a number larger than {MAX_INT_BITS} bits")
            return
        sequence, times = (left, right) if isinstance(right, int) else (right, left)
        if isinstance(sequence, str | bytes | list | tuple) and isinstance(times, int):
            _refuse_size(len(sequence) * times, "the result of '*'")
    elif operator == "+":
        if isinstance(left, str | bytes | list | tuple) and isinstance(right, str | bytes | list | tuple):
            _refuse_size(len(left) + len(right), "the result of '+'")
    elif operator == "%" and isinstance(left, str):
        _check_percent(left, right)


def _check_percent(template: str, values) -> None:
    """Refuse `'%s' % values` formatting whose text would exceed the output limit."""
    fields = _PERCENT_FIELD.findall(template)
    if not fields:
        return
    limit = _limit()
    items = list(values) if isinstance(values, tuple) else [values]
    widest = 0
    for width, precision in fields:
        for number in (width, precision):
            if number == "*":
                widest = max([widest, *(abs(item) for item in items if isinstance(item, int))])
            elif number:
                widest = max(widest, int(number) if len(number) <= 9 else limit + 1)
    measure = _Measure(limit, "the formatted text")
    longest = max((measure.size(item) for item in items), default=0)
    _refuse_size(len(template) + len(fields) * (longest + widest), "the formatted text")


def _argument(args: tuple, kwargs: dict, index: int, name: str, default=None):
    if len(args) > index:
        return args[index]
    return kwargs.get(name, default)


def _check_call(obj, args: tuple, kwargs: dict) -> tuple:
    """Refuse a built-in str/bytes/int method call whose result would pass the output limit; returns its args."""
    # join() is handed a list, since measuring its items here reads an iterator once and for all.
    if not isinstance(obj, types.BuiltinMethodType):
        return args
    owner, name = obj.__self__, obj.__name__
    size = None
    try:
        if isinstance(owner, str | bytes):
            if name in ("ljust", "rjust", "center", "zfill"):
                size = _argument(args, kwargs, 0, "width", 0)
            elif name == "expandtabs":
                tab = "\t" if isinstance(owner, str) else b"\t"
                size = len(owner) + owner.count(tab) * _argument(args, kwargs, 0, "tabsize", 8)
            elif name == "replace":
                old, new = _argument(args, kwargs, 0, "old"), _argument(args, kwargs, 1, "new")
                count = _argument(args, kwargs, 2, "count", -1)
                hits = len(owner) + 1 if not old else owner.count(old)
                if count >= 0:
                    hits = min(hits, count)
                size = len(owner) + hits * (len(new) - len(old))
            elif name == "join" and args:
                items = _bounded_list(args[0])
                args = (items, *args[1:])
                lengths = sum(len(item) for item in items if isinstance(item, str | bytes))
                size = lengths + len(owner) * max(len(items) - 1, 0)
            elif name == "translate" and args:
                table = args[0]
                targets = table.values() if isinstance(table, Mapping) else table
                longest = max((len(t) for t in targets if isinstance(t, str | bytes)), default=1)
                size = len(owner) * max(longest, 1)
        elif isinstance(owner, int) and name == "to_bytes":
            size = _argument(args, kwargs, 0, "length", 1)
    except (TypeError, AttributeError):
        # Arguments of the wrong type: the call itself raises the clearer error.
        return args
    if isinstance(size, int):
        _refuse_size(size, f"the result of {type(owner).__name__}.{name}()")
    return args


class _BoundedFormatterMixin:
    """str.format() that refuses huge widths and counts what it writes."""

    def vformat(self, format_string, args, kwargs):
        self.written = 0
        return super().vformat(format_string, args, kwargs)

    def format_field(self, value, format_spec):
        _tick()
        limit = _limit()
        for number in re.findall(r"\d+", format_spec):
            if len(number) > 9 or int(number) > limit:
                raise _too_large("a format() width")
        _check_text(value, "a format() field")
        text = super().format_field(value, format_spec)
        self.written += len(text)
        if self.written > limit:
            raise _too_large("the result of format()")
        return text


class _BoundedFormatter(_BoundedFormatterMixin, SandboxedFormatter):
    pass


class _BoundedEscapeFormatter(_BoundedFormatterMixin, SandboxedEscapeFormatter):
    pass


# --- the environment ----------------------------------------------------------------------------


def _comparable_node(node):
    if isinstance(node, nodes.Const):
        return node
    return nodes.Filter(node, "_comparable", [], [], None, None, lineno=node.lineno)


class _Hardening(NodeTransformer):
    """Rewrites a parsed template: loops, `~` and comparisons report to the budget; loading templates is refused."""

    def visit_For(self, node):
        self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, "_loop_items", [], [], None, None, lineno=node.lineno)
        return node

    def visit_Concat(self, node):
        self.generic_visit(node)
        items = nodes.List(node.nodes, lineno=node.lineno)
        return nodes.Filter(items, "_concat", [], [], None, None, lineno=node.lineno)

    def visit_Compare(self, node):
        self.generic_visit(node)
        node.expr = _comparable_node(node.expr)
        for operand in node.ops:
            operand.expr = _comparable_node(operand.expr)
        return node

    def visit_Test(self, node):
        self.generic_visit(node)
        node.node = _comparable_node(node.node)
        node.args = [_comparable_node(arg) for arg in node.args]
        return node

    def visit_Pair(self, node):
        self.generic_visit(node)
        node.key = _comparable_node(node.key)
        return node

    def _refuse(self, node, tag: str):
        raise TemplateSyntaxError(f"{{% {tag} %}} is not allowed in expressions", node.lineno)

    def visit_Include(self, node):
        self._refuse(node, "include")

    def visit_Import(self, node):
        self._refuse(node, "import")

    def visit_FromImport(self, node):
        self._refuse(node, "from … import")

    def visit_Extends(self, node):
        self._refuse(node, "extends")


def _finalize(value) -> str:
    text = _text(value)
    budget = _budget.get()
    if budget is not None:
        budget.tick()
        budget.finalized += len(text)
        if budget.finalized > budget.limit:
            raise _too_large("the rendered text")
    return text


def _safe_range(*args) -> range:
    numbers = range(*args)
    try:
        too_long = len(numbers) > MAX_RANGE
    except OverflowError:
        too_long = True
    if too_long:
        raise ExpressionError(f"range() is limited to {MAX_RANGE} numbers")
    return numbers


def _has_key(mapping, key) -> bool:
    try:
        return key in mapping
    except TypeError:
        return False


class ExpressionEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox every workflow expression runs in: lenient about missing names, strict about escapes and size."""

    intercepted_binops = frozenset({"+", "*", "**", "%"})

    def __init__(self):
        super().__init__(
            undefined=ChainableUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            finalize=_finalize,
            cache_size=0,
            auto_reload=False,
        )
        # lipsum(n) loops n times inside Jinja, where no hook can stop it; the rest are small and inert.
        del self.globals["lipsum"]
        self.globals["range"] = _safe_range
        self.filters.update(
            {
                "add_days": _shifter("days"),
                "add_hours": _shifter("hours"),
                "add_minutes": _shifter("minutes"),
                "add_seconds": _shifter("seconds"),
                "format_date": _format_date,
                "parse_date": _parse_date,
                "json": _to_json,
                "from_json": _from_json,
                "center": _center,
                "indent": _indent,
                "replace": _replace,
                "join": _join,
                "sum": _sum,
                "format": _format,
                "wordwrap": _wordwrap,
                "tojson": _tojson,
                "urlize": _urlize,
                "slice": _slice,
                "batch": _batch,
                "_loop_items": _loop_items,
                "_concat": _concat,
                "_comparable": _comparable,
            }
        )
        for name in _TEXT_FILTERS:
            self.filters[name] = _guard_text_input(self.filters[name], name)
        for name in _COMPARING_FILTERS:
            self.filters[name] = _guard_compared_input(self.filters[name])

    def _generate(self, source, name, filename, defer_init=False):
        source = _Hardening().visit(source)
        source.set_environment(self)
        return super()._generate(source, name, filename, defer_init=defer_init)

    def getattr(self, obj, attribute):
        _tick()
        if isinstance(obj, SecretScope):
            return self._secret(obj, attribute)
        # Data first: `steps.search.items` is the step's "items", not dict.items.
        if isinstance(obj, Mapping) and _has_key(obj, attribute):
            return obj[attribute]
        if isinstance(attribute, str) and attribute.startswith("__"):
            raise SecurityError(f"access to {attribute!r} of a {type(obj).__name__} is not allowed")
        return super().getattr(obj, attribute)

    def getitem(self, obj, argument):
        _tick()
        if isinstance(obj, SecretScope):
            return self._secret(obj, argument)
        if (
            isinstance(argument, str)
            and argument.startswith("__")
            and not (isinstance(obj, Mapping) and _has_key(obj, argument))
        ):
            raise SecurityError(f"access to {argument!r} of a {type(obj).__name__} is not allowed")
        return super().getitem(obj, argument)

    def _secret(self, secrets: "SecretScope", name):
        if not isinstance(name, str) or name.startswith("_"):
            raise SecurityError(f"secrets.{name} is not allowed")
        value = secrets.get(name)
        return self.undefined(obj=secrets, name=name) if value is None else value

    def unsafe_undefined(self, obj, attribute):
        raise SecurityError(f"access to {attribute!r} of a {type(obj).__name__} is not allowed")

    def call_binop(self, context, operator, left, right):
        _tick()
        _check_binop(operator, left, right)
        return super().call_binop(context, operator, left, right)

    def call(self, context, obj, /, *args, **kwargs):
        _tick()
        # Methods such as list.index() and loop.changed() compare their arguments (and their owner).
        for value in (getattr(obj, "__self__", None), *args, *kwargs.values()):
            _comparable(value)
        args = _check_call(obj, args, kwargs)
        result = super().call(context, obj, *args, **kwargs)
        if isinstance(obj, Macro) and isinstance(result, str):
            _refuse_size(len(result), "a macro's output")
        return result

    def wrap_str_format(self, value):
        if not isinstance(value, types.MethodType | types.BuiltinMethodType) or value.__name__ not in (
            "format",
            "format_map",
        ):
            return None
        owner = value.__self__
        if not isinstance(owner, str):
            return None
        if isinstance(owner, Markup):
            formatter = _BoundedEscapeFormatter(self, escape=owner.escape)
        else:
            formatter = _BoundedFormatter(self)
        is_format_map = value.__name__ == "format_map"

        def wrapper(*args, **kwargs):
            if is_format_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one mapping")
                args, kwargs = (), args[0]
            return type(owner)(formatter.vformat(owner, args, kwargs))

        return functools.update_wrapper(wrapper, value)


_env = ExpressionEnvironment()


# --- compiling ----------------------------------------------------------------------------------


def _lone_expression(source: str) -> tuple[str, int] | None:
    """The inner text of a string that is exactly one `{{ … }}`, with the number of lines before it."""
    match = _LONE.fullmatch(source)
    if match is None:
        return None
    inner = match.group(1)
    if "{{" in inner or "{%" in inner:
        return None
    return inner, source[: match.start(1)].count("\n")


@functools.lru_cache(maxsize=1024)
def _compile(source: str):
    """(a compiled template, None) or, for a lone `{{ … }}`, (None, a compiled expression, is it a path)."""
    lone = _lone_expression(source)
    if lone is None:
        return _env.from_string(source), None, False
    inner, lines_before = lone
    try:
        expression = _env.compile_expression(inner, undefined_to_none=True)
        path = _is_path(Parser(_env, inner, state="variable").parse_expression())
    except TemplateSyntaxError as exc:
        exc.lineno = (exc.lineno or 1) + lines_before
        raise
    return None, expression, path


def _is_path(node) -> bool:
    """True for `a.b['c'].d`: its value is a part of the scope, which a template cannot have built."""
    while isinstance(node, nodes.Getattr | nodes.Getitem):
        if isinstance(node, nodes.Getitem) and not isinstance(node.arg, nodes.Const):
            return False
        node = node.node
    return isinstance(node, nodes.Name)


def _syntax_message(exc: TemplateSyntaxError) -> str:
    return f"{exc.message} (line {exc.lineno or 1})"


# --- public API ---------------------------------------------------------------------------------


def is_expression(value) -> bool:
    """True for a str holding `{{` or `{%`, which is rendered as a template."""
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def check(source: str) -> str | None:
    """None when the template parses, else a short message naming the line."""
    if not is_expression(source):
        return None
    try:
        _compile(source)
    except TemplateSyntaxError as exc:
        return _syntax_message(exc)
    except Exception as exc:  # the editor shows whatever went wrong as text
        return str(exc) or type(exc).__name__
    return None


def _parse(source: str):
    try:
        return _env.parse(source)
    except TemplateSyntaxError as exc:
        raise ExpressionError(f"syntax error: {_syntax_message(exc)}") from None


def names_used(source: str) -> set[str]:
    """Top-level names a template reads from its scope (built-in globals such as range left out)."""
    if not is_expression(source):
        return set()
    return set(meta.find_undeclared_variables(_parse(source))) - set(_env.globals)


def step_keys_used(source: str) -> set[str]:
    """The X of every `steps.X`, `steps['X']` and `steps.get('X')` in a template."""
    if not is_expression(source):
        return set()
    template = _parse(source)
    keys: set[str] = set()
    getters = set()
    for call in template.find_all(nodes.Call):
        target = call.node
        if (
            isinstance(target, nodes.Getattr)
            and target.attr == "get"
            and _is_steps(target.node)
            and call.args
            and isinstance(call.args[0], nodes.Const)
            and isinstance(call.args[0].value, str)
        ):
            keys.add(call.args[0].value)
            getters.add(id(target))
    for node in template.find_all((nodes.Getattr, nodes.Getitem)):
        if not _is_steps(node.node) or id(node) in getters:
            continue
        if isinstance(node, nodes.Getattr):
            keys.add(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            keys.add(node.arg.value)
    return keys


def _is_steps(node) -> bool:
    return isinstance(node, nodes.Name) and node.name == "steps" and node.ctx == "load"


def render(value, scope: dict):
    """Renders every string of a JSON-like value; a lone `{{ … }}` keeps its value's type."""
    if isinstance(value, str):
        if not is_expression(value):
            return value
    elif not isinstance(value, dict | list | tuple):
        return value
    token = _budget.set(_Budget())
    try:
        return _render_value(value, scope if scope is not None else {})
    finally:
        _budget.reset(token)


def _render_value(value, scope):
    if isinstance(value, str):
        return _render_string(value, scope) if is_expression(value) else value
    if isinstance(value, dict):
        return {key: _render_value(item, scope) for key, item in value.items()}
    if isinstance(value, list):
        return [_render_value(item, scope) for item in value]
    if isinstance(value, tuple):
        return tuple(_render_value(item, scope) for item in value)
    return value


def _render_string(source: str, scope):
    budget = _budget.get()
    try:
        budget.tick()
        template, expression, is_path = _compile(source)
        if expression is not None:
            result = expression(scope)
            if is_path and type(result) in _PATH_TYPES:
                return result
            result = _native(result)
            _check_native(result)
            return result
        context = template.new_context(scope)
        parts = []
        for chunk in template.root_render_func(context):
            budget.written += len(chunk)
            if budget.written > budget.limit:
                raise _too_large("the rendered text")
            budget.tick()
            parts.append(chunk)
        text = "".join(parts)
        # Characters were counted so far; the limit is in bytes.
        if len(text) * 4 > budget.limit and len(text.encode("utf-8", "surrogatepass")) > budget.limit:
            raise _too_large("the rendered text")
        return text
    except Exception as exc:  # every failure reaches the user as one ExpressionError
        raise _failure(exc, source, scope) from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ExpressionError):
        return exc.message
    if isinstance(exc, TemplateSyntaxError):
        return f"syntax error: {_syntax_message(exc)}"
    if isinstance(exc, SecurityError):
        return f"sandbox: {exc}"
    if isinstance(exc, UndefinedError):
        return f"undefined value: {exc.message}"
    if isinstance(exc, ZeroDivisionError):
        return "division by zero"
    if isinstance(exc, RecursionError):
        return "the expression nests or recurses too deeply"
    if isinstance(exc, MemoryError):
        return "the expression ran out of memory"
    if isinstance(exc, OverflowError):
        return f"number out of range: {exc}"
    if isinstance(exc, TemplateError):
        return str(exc)
    if isinstance(exc, TypeError):
        return f"wrong type: {exc}"
    if isinstance(exc, ValueError):
        return f"invalid value: {exc}"
    if isinstance(exc, KeyError):
        return f"missing key: {exc}"
    message = getattr(exc, "message", None) or str(exc)
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


def _failure(exc: BaseException, source: str, scope) -> ExpressionError:
    reason = _reason(exc)
    secrets = scope.get("secrets") if isinstance(scope, Mapping) else None
    if isinstance(secrets, SecretScope):
        reason = secrets.mask(reason)
    snippet = " ".join(source.split())
    if len(snippet) > 80:
        snippet = snippet[:79] + "…"
    return ExpressionError(f'{reason} in "{snippet}"', extra={"expression": snippet})


def evaluate_condition(source, scope: dict) -> bool:
    """An `only_when` decided: empty is true; else the value's truthiness, with text "false", "0" and "" false."""
    if source is None:
        return True
    if not isinstance(source, str):
        return bool(source)
    if not source.strip():
        return True
    value = render(source, scope)
    if isinstance(value, str):
        return value.strip().lower() not in _FALSE_TEXT
    return bool(value)


class SecretScope:
    """The `secrets` of a scope: each secret is loaded on first use and remembered, so logs can mask it."""

    def __init__(self, loader: Callable[[str], str | None]):
        self._loader = loader
        self._values: dict[str, str | None] = {}

    def get(self, name: str, default=None):
        """The secret's value (loaded once), or default when there is no such secret."""
        if not isinstance(name, str):
            return default
        if name not in self._values:
            value = self._loader(name)
            self._values[name] = None if value is None else str(value)
        value = self._values[name]
        return default if value is None else value

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        value = self.get(name)
        if value is None:
            raise AttributeError(name)
        return value

    def __contains__(self, name) -> bool:
        return self.get(name) is not None

    def __iter__(self):
        # Secrets are looked up by name only; listing them would decrypt every one.
        return iter(())

    def __str__(self) -> str:
        return ""

    def __repr__(self) -> str:
        return "<SecretScope>"

    @property
    def revealed(self) -> list[str]:
        """Names of the secrets read so far."""
        return [name for name, value in self._values.items() if value is not None]

    def _forms(self) -> list[str]:
        forms = set()
        for value in self._values.values():
            if value:
                forms.update(_secret_forms(value))
        return sorted(forms, key=len, reverse=True)

    def holders(self, params: dict) -> dict[str, list[str]]:
        """The params holding a revealed secret in a form mask hides (a short one as a whole value, _finder),
        each with the secrets' names."""
        revealed = {name: value for name, value in self._values.items() if value}
        if not revealed:
            return {}  # the usual run: no secret read, no walk over (perhaps 100,000 items of) params
        any_form, found = _finder(self._forms()), {}
        for key, value in params.items():
            # One walk with every form finds the holders; naming the secrets walks again, but only
            # for a parameter that fails the step anyway.
            if _holds(value, any_form):
                found[key] = [name for name, secret in revealed.items()
                              if _holds(value, _finder(_secret_forms(secret)))]
        return found

    def appears_in(self, value: str | bytes) -> bool:
        """Whether a revealed secret, in a form mask() replaces, is in this text or these bytes (as holders finds it)."""
        forms = self._forms()
        if not forms:
            return False
        return _finder(forms)(value.decode(errors="replace") if isinstance(value, bytes) else value)

    def mask(self, value, *, copy: bool = True):
        """A copy of value with each revealed secret (and its JSON and URL forms) as ••••; copy=False: itself if none."""
        forms = self._forms()
        if not forms and not copy:
            return value  # the caller copies it anyway (a step log is serialised at once): no walk for nothing
        return _masked(value, forms, {})


def _secret_forms(value: str) -> set[str]:
    """The secret's value as a log may hold it: raw, JSON-escaped, URL-encoded and as requests re-quotes it."""
    forms = {
        value,
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        # How requests re-quotes a URL it prepares (a path's space as %20, its colon kept).
        requote_uri(value),
    }
    forms.discard("")
    return forms


# A secret shorter than this (a PIN, a region code, an account number) is found only as a whole value:
# as a part of one it would match ordinary text ("1" in {"count": 10}) and refuse or strip what is not it.
_SHORTEST_FOUND_INSIDE = 6


def _finder(forms) -> Callable[[str], bool]:
    """Whether a text holds one of the forms: inside it for a long one, as all of it for a short one."""
    whole = {form for form in forms if len(form) < _SHORTEST_FOUND_INSIDE}
    inside = [form for form in forms if len(form) >= _SHORTEST_FOUND_INSIDE]
    # One regular expression for all long forms: one search per string of a list of 10,000 records
    # (50,000 strings) takes half the time of a loop over the forms.
    search = re.compile("|".join(map(re.escape, inside))).search if inside else None
    return lambda text: text in whole or (search is not None and search(text) is not None)


def _holds(value, found: Callable[[str], bool]) -> bool:
    """Whether a string, number or key in value holds a form, as `found` (a _finder) tells."""
    stack, seen = [value], set()
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if found(value):
                return True
        elif isinstance(value, bytes):
            if found(value.decode(errors="replace")):
                return True
        elif isinstance(value, int | float | Decimal) and not isinstance(value, bool):
            if found(str(value)):
                return True
        elif isinstance(value, dict | list | tuple) and id(value) not in seen:
            seen.add(id(value))
            if isinstance(value, dict):
                stack.extend(value.keys())
                stack.extend(value.values())
            else:
                stack.extend(value)
    return False


# The secrets of the run executing in this context (set by engine.run_execute), for what a step causes
# outside its stored log: library log records (workflows/log_masking.py) and redirects (outbound.py).
current_secrets: ContextVar[SecretScope | None] = ContextVar("current_secrets", default=None)


def _masked(value, forms: list[str], memo: dict):
    if isinstance(value, str):
        for form in forms:
            if form in value:
                value = value.replace(form, MASK)
        return value
    if isinstance(value, bytes):
        for form in forms:
            value = value.replace(form.encode(), MASK.encode())
        return value
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        text = str(value)
        return MASK if any(form in text for form in forms) else value
    key = id(value)
    if key in memo:
        return memo[key]
    if isinstance(value, dict):
        result = {_masked(name, forms, memo): _masked(item, forms, memo) for name, item in value.items()}
    elif isinstance(value, list):
        result = [_masked(item, forms, memo) for item in value]
    elif isinstance(value, tuple):
        result = tuple(_masked(item, forms, memo) for item in value)
    else:
        return value
    memo[key] = result
    return result
