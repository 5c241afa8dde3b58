"""What the simulated providers share, and nothing of the switch's: a small checker of JSON
request bodies against a plain description of the fields a provider looks at, and JSON answers.

Each provider describes its own messages with `Obj`, `Text`, `Whole`, ... and words the
problems found its own way (PPU and SUV word format errors differently)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import msgspec
from starlette.responses import Response

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:?\d{2})")
_encode = msgspec.json.Encoder().encode


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a request: where (a dotted path), what, and the value found."""

    where: str
    what: str
    """"missing", "unknown", "not a uuid", or a description such as "expected a string"."""
    value: Any = None


class Spec:
    """What one JSON value must look like."""

    def problems(self, value: Any, where: str, strict: bool) -> list[Problem]:
        raise NotImplementedError


@dataclass(frozen=True)
class Text(Spec):
    shortest: int = 0
    longest: int | None = None
    pattern: re.Pattern[str] | None = None

    def problems(self, value: Any, where: str, strict: bool) -> list[Problem]:
        if not isinstance(value, str):
            return [Problem(where, "expected a string", value)]
        if self.pattern is not None and not self.pattern.fullmatch(value):
            return [Problem(where, f"does not match {self.pattern.pattern}", value)]
        if len(value) < self.shortest:
            return [Problem(where, f"must be at least {self.shortest} characters", value)]
        if self.longest is not None and len(value) > self.longest:
            return [Problem(where, f"must be at most {self.longest} characters", value)]
        return []


@dataclass(frozen=True)
class Uuid(Spec):
    def problems(self, value: Any, where: str, strict: bool) -> list[Problem]:
        if isinstance(value, str) and UUID.fullmatch(value):
            return []
        return [Problem(where, "not a uuid", value)]


@dataclass(frozen=True)
class Whole(Spec):
    """An integer; a string of digits is taken too, as lenient servers do."""

    least: int | None = None
    most: int | None = None

    def problems(self, value: Any, where: str, strict: bool) -> list[Problem]:
        number = whole(value)
        if number is None:
            return [Problem(where, "expected an integer", value)]
        if self.least is not None and number < self.least:
            return [Problem(where, f"must be at least {self.least}", value)]
        if self.most is not None and number > self.most:
            return [Problem(where, f"must be at most {self.most}", value)]
        return []


@dataclass(frozen=True)
class Decimal(Spec):
    def problems(self, value: Any, where: str, strict: bool) -> list[Problem]:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [Problem(where, "expected a number", value)]


@dataclass(frozen=True)
class Flag(Spec):
    def problems(self, value: Any, where: str, strict: bool) -> list[Problem]:
        return [] if isinstance(value, bool) else [Problem(where, "expected true or false", value)]


@dataclass(frozen=True)
class Choice(Spec):
    values: tuple[str, ...]

    def problems(self, value: Any, where: str, strict: bool) -> list[Problem]:
        if value in self.values and isinstance(value, str):
            return []
        return [Problem(where, f"expected one of {', '.join(self.values)}", value)]


@dataclass(frozen=True)
class Either(Spec):
    """A value that may take either of two forms (say a currency as "710" or 710)."""

    first: Spec
    second: Spec

    def problems(self, value: Any, where: str, strict: bool) -> list[Problem]:
        found = self.first.problems(value, where, strict)
        return found if found and self.second.problems(value, where, strict) else []


@dataclass(frozen=True)
class Free(Spec):
    """A JSON object the provider does not look inside."""

    def problems(self, value: Any, where: str, strict: bool) -> list[Problem]:
        return [] if isinstance(value, dict) else [Problem(where, "expected an object", value)]


@dataclass(frozen=True)
class Items(Spec):
    item: Spec

    def problems(self, value: Any, where: str, strict: bool) -> list[Problem]:
        if not isinstance(value, list):
            return [Problem(where, "expected an array", value)]
        found: list[Problem] = []
        for n, element in enumerate(value):
            found += self.item.problems(element, f"{where}[{n}]", strict)
        return found


@dataclass(frozen=True)
class Table(Spec):
    """An object of any keys, each value of one kind."""

    item: Spec

    def problems(self, value: Any, where: str, strict: bool) -> list[Problem]:
        if not isinstance(value, dict):
            return [Problem(where, "expected an object", value)]
        found: list[Problem] = []
        for key, element in value.items():
            found += self.item.problems(element, f"{where}.{key}", strict)
        return found


@dataclass(frozen=True)
class Obj(Spec):
    """An object with named fields; those in `required` must be there and not null. An optional
    field sent as null counts as absent. Under `strict`, fields not named are refused."""

    fields: dict[str, Spec]
    required: frozenset[str] = field(default_factory=frozenset)

    def problems(self, value: Any, where: str, strict: bool) -> list[Problem]:
        if not isinstance(value, dict):
            return [Problem(where or "$", "expected an object", value)]
        found: list[Problem] = []
        for name, spec in self.fields.items():
            at = f"{where}.{name}" if where else name
            if value.get(name) is None:
                if name in self.required:
                    found.append(Problem(at, "missing"))
                continue
            found += spec.problems(value[name], at, strict)
        if strict:
            found += [Problem(f"{where}.{n}" if where else n, "unknown") for n in value if n not in self.fields]
        return found

    def extended(self, required: tuple[str, ...] = (), **more: Spec) -> Obj:
        """This object with more fields (those named in `required` must be there)."""
        return Obj({**self.fields, **more}, self.required | frozenset(required))


def obj(required: str = "", **fields: Spec) -> Obj:
    """`Obj(fields)`, the required ones named in a space-separated string."""
    return Obj(fields, frozenset(required.split()))


def one_of(words: str) -> Choice:
    """A `Choice` of the space-separated `words`."""
    return Choice(tuple(words.split()))


def whole(value: Any) -> int | None:
    """`value` as an integer, if it is one or a string of digits."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def read_json(body: bytes) -> tuple[Any, str | None]:
    """The parsed body, or None and why it is not JSON."""
    try:
        return msgspec.json.decode(body), None
    except msgspec.DecodeError as exc:
        return None, f"malformed JSON: {exc}"


def id_of(raw: Any) -> str | None:
    """The id of a message, when one can be read, for an error body."""
    found = raw.get("id") if isinstance(raw, dict) else None
    return found[:36] if isinstance(found, str) else None


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(_encode(body), status, headers, media_type="application/json")
