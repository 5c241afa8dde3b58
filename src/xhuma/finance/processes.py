"""Reconciliation processes: `[[finance.processes]]` in the TOML configuration.

Pure configuration, read once on the main thread when the settings are loaded (by `xhuma.config`,
which converts the file into these strict structs and then calls `check`): no I/O, no database.
A process reconciles xhuma's own records of one service with one counterparty's files: how their
file is read (`FileSpec`), the ordered matching rules, automatic resolutions and expiry."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from msgspec import Meta

from xhuma.finance.fees import Accounts, FeeError, FeeRule
from xhuma.finance.fees import check as check_fees

Name = Annotated[str, Meta(min_length=1, max_length=80)]
FIELDS = ("reference", "amount", "currency", "time", "type", "meter", "voucher")
IDENTITY_FIELDS = ("reference", "meter", "voucher")
"""Fields that say which record it is: the key a grouped strategy groups by, and what a partial
match must agree on before the other fields are compared."""
TEXT_FIELDS = ("reference", "currency", "type", "meter", "voucher")
OPERATORS: dict[str, tuple[str, ...]] = {
    "amount": ("equals", "greater_than", "less_than"),
    "time": ("equals", "before", "after"),
    **{name: ("equals", "contains") for name in TEXT_FIELDS},
}
SERVICE_KINDS: dict[str, tuple[str, ...]] = {
    "ppu": ("purchase",),
    "suv": ("voucher_provision", "redemption", "refund"),
    "eft": ("eft_credit", "eft_debit"),
}
"""The journal's transaction kinds that move money, per service: our side of a process."""
EXCLUDABLE = (
    *(kind for kinds in SERVICE_KINDS.values() for kind in kinds),
    *("received", "sent_upstream", "approved", "declined", "unknown", "confirmed", "reversed", "accepted"),
)
"""What `exclude` may name: a transaction kind or a transaction state."""


class Criterion(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    field: Literal["reference", "amount", "currency", "time", "type", "meter", "voucher"]
    operator: Literal["equals", "contains", "greater_than", "less_than", "before", "after"] = "equals"
    drift: int | str | None = None
    """Amounts: whole cents (`5`) or a fraction of our amount (`"0.5%"`); times: whole seconds."""

    @property
    def is_key(self) -> bool:
        return self.field in IDENTITY_FIELDS

    def fraction(self) -> tuple[int, int] | None:
        """A percentage drift as numerator and denominator of a fraction (exact, no float)."""
        if not isinstance(self.drift, str):
            return None
        ratio = Decimal(self.drift.removesuffix("%")) / 100
        numerator, denominator = ratio.as_integer_ratio()
        return numerator, denominator


class Rule(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    criteria: Annotated[list[Criterion], Meta(min_length=1)]
    strategy: Literal["one_to_one", "one_to_many", "many_to_one"] = "one_to_one"
    name: str | None = None

    @property
    def keys(self) -> list[Criterion]:
        return [c for c in self.criteria if c.is_key]

    @property
    def group_fields(self) -> list[str]:
        """What a grouped strategy groups the many side by: the fields compared for equality."""
        return [c.field for c in self.criteria if c.operator == "equals" and c.field in TEXT_FIELDS]


class AutoResolution(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """A partial match whose only difference is an amount within `within_cents` is accepted."""

    within_cents: Annotated[int, Meta(ge=0)]
    in_favour_of: Annotated[str, Meta(min_length=1, max_length=80)]
    field: Literal["amount"] = "amount"


class FileSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    columns: dict[str, str | Annotated[int, Meta(ge=1)] | list[int]]
    """Canonical field -> the column's header name, or its position (1 is the first); for
    `format = "fixed"`, `[start, length]` in characters (1 is the first)."""
    format: Literal["csv", "fixed"] = "csv"
    delimiter: Annotated[str, Meta(min_length=1, max_length=1)] = ","
    header_lines: Annotated[int, Meta(ge=0)] = 1
    trailer_lines: Annotated[int, Meta(ge=0)] = 0
    """Lines at the end of the file that are not records (a count or checksum line): skipped."""
    line_ending: Literal["any", "lf", "crlf"] = "any"
    """`lf` or `crlf`: every line must end so (a line ending otherwise is a bad line)."""
    encoding: str = "utf-8"
    name_pattern: str | None = None
    """Electrum's style, e.g. `SIM_XHUMA_EXTRACT_PPU_SWITCH_YYYYMMDD_EPOCH.csv` (`*` is anything)."""
    amount_unit: Literal["cents", "decimal"] = "cents"
    time_format: str = "iso"
    """`iso` (ISO 8601), or a `strftime` pattern; a time without an offset is in the process's zone."""

    def name_regex(self) -> re.Pattern[str] | None:
        if self.name_pattern is None:
            return None
        parts = re.split(r"(YYYYMMDD|EPOCH|\*)", self.name_pattern)
        tokens = {"YYYYMMDD": r"\d{8}", "EPOCH": r"\d+", "*": ".*"}
        return re.compile("".join(tokens.get(p, re.escape(p)) for p in parts))

    def positions(self) -> dict[str, tuple[int, int]]:
        """A fixed-width file's fields -> (first index, end index) into the line, 0-based."""
        return {
            name: (column[0] - 1, column[0] - 1 + column[1])
            for name, column in self.columns.items()
            if isinstance(column, list)
        }


class Process(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    name: Name
    service: Literal["ppu", "suv", "eft"]
    counterparty: Name
    file: FileSpec
    rules: Annotated[list[Rule], Meta(min_length=1)]
    cycle: Literal["daily"] = "daily"
    time_zone: str = "UTC"
    expiry_days: Annotated[int, Meta(ge=1, le=366)] = 3
    """A record still unmatched in the run of the day this many days after its own is expired."""
    exclude: list[str] = []
    auto_resolutions: list[AutoResolution] = []
    outbox: Annotated[str, Meta(min_length=1)] | None = None
    """A folder the day's reports are written to after each `recon run` (see `finance.reports`);
    relative to the configuration file's folder. None: reports only on demand (`xhuma report`)."""
    inbox: Annotated[str, Meta(min_length=1)] | None = None
    """A directory the counterparty's files are dropped in: `xhuma recon intake` (and `xhuma
    serve`, every `finance.intake_seconds`) loads each file there that follows `name_pattern`,
    then moves it to `processed/` or `refused/` (with a `.errors.txt` beside it)."""

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def rule_name(self, index: int) -> str:
        return self.rules[index].name or f"rule {index + 1}"


class Finance(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    processes: list[Process] = []
    fees: list[FeeRule] = []
    accounts: dict[str, Accounts] = {}
    intake_seconds: Annotated[float, Meta(gt=0)] = 60.0
    """How often `xhuma serve` looks in the processes' inboxes."""


class ProcessError(ValueError):
    """`key: reason`, the key spelt from `finance`, e.g. `finance.processes[0].rules[1].strategy`."""


def check(finance: Finance, providers: set[str]) -> None:
    """What the structs cannot say, checked in file order: the first problem is raised."""
    seen: set[str] = set()
    for index, process in enumerate(finance.processes):
        where = f"finance.processes[{index}]"
        if process.name in seen:
            raise ProcessError(f"{where}.name: a second process named {process.name!r}")
        seen.add(process.name)
        if process.service != "eft" and process.counterparty not in providers:
            known = ", ".join(sorted(providers)) or "none"
            raise ProcessError(f"{where}.counterparty: no provider named {process.counterparty!r}; known: {known}")
        try:
            ZoneInfo(process.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ProcessError(f"{where}.time_zone: unknown time zone {process.time_zone!r}") from None
        for n, name in enumerate(process.exclude):
            if name not in EXCLUDABLE:
                raise ProcessError(f"{where}.exclude[{n}]: {name!r} is neither a transaction kind nor a state")
        _check_file(process.file, f"{where}.file")
        for r, rule in enumerate(process.rules):
            _check_rule(rule, f"{where}.rules[{r}]")
    try:
        check_fees(finance.fees, finance.accounts, {p.counterparty for p in finance.processes})
    except FeeError as exc:
        raise ProcessError(str(exc)) from None


def _check_file(spec: FileSpec, where: str) -> None:
    for name, column in spec.columns.items():
        if name not in FIELDS:
            raise ProcessError(f"{where}.columns.{name}: unknown field; known: {', '.join(FIELDS)}")
        if spec.format == "fixed":
            if not isinstance(column, list) or len(column) != 2 or column[0] < 1 or column[1] < 1:
                raise ProcessError(
                    f"{where}.columns.{name}: a fixed-width column is [start, length], both >= 1 (1 is the "
                    f"first character), not {column!r}"
                )
            continue
        if isinstance(column, list):
            raise ProcessError(f'{where}.columns.{name}: [start, length] is for format = "fixed"; use a name or number')
        if isinstance(column, str) and spec.header_lines == 0:
            raise ProcessError(f"{where}.columns.{name}: a column named {column!r} needs header_lines >= 1")
    spans = sorted((start, end, name) for name, (start, end) in spec.positions().items())
    for (_, end, first), (start, _, second) in zip(spans, spans[1:], strict=False):
        if start < end:
            raise ProcessError(f"{where}.columns.{second}: overlaps columns.{first}")
    for name in ("reference", "amount", "time"):
        if name not in spec.columns:
            raise ProcessError(f"{where}.columns.{name}: is required")
    try:
        codecs.lookup(spec.encoding)
    except LookupError:
        raise ProcessError(f"{where}.encoding: unknown encoding {spec.encoding!r}") from None
    if spec.time_format != "iso":
        try:
            datetime.strptime(datetime(2026, 1, 2, 3, 4, 5).strftime(spec.time_format), spec.time_format)
        except ValueError:
            raise ProcessError(f"{where}.time_format: {spec.time_format!r} cannot read back what it writes") from None


def _check_rule(rule: Rule, where: str) -> None:
    for c, criterion in enumerate(rule.criteria):
        at = f"{where}.criteria[{c}]"
        if criterion.operator not in OPERATORS[criterion.field]:
            allowed = ", ".join(OPERATORS[criterion.field])
            raise ProcessError(
                f"{at}.operator: {criterion.operator} does not apply to {criterion.field}; use {allowed}"
            )
        _check_drift(criterion, f"{at}.drift")
    if rule.strategy != "one_to_one" and not any(c.operator == "equals" and c.is_key for c in rule.criteria):
        raise ProcessError(
            f"{where}.strategy: {rule.strategy} groups records by an identity field: add a criterion "
            f"with operator equals on {' or '.join(IDENTITY_FIELDS)}"
        )


def _check_drift(criterion: Criterion, where: str) -> None:
    drift = criterion.drift
    if drift is None:
        return
    if criterion.field in TEXT_FIELDS:
        raise ProcessError(f"{where}: only amounts and times have a drift")
    if isinstance(drift, int):
        if drift < 0:
            raise ProcessError(f"{where}: must be >= 0")
        return
    if criterion.field == "time":
        raise ProcessError(f"{where}: a time drift is whole seconds, e.g. 60")
    try:
        ratio = Decimal(drift.removesuffix("%")) if drift.endswith("%") else None
    except InvalidOperation:
        ratio = None
    if ratio is None or not ratio.is_finite() or ratio < 0:
        raise ProcessError(f'{where}: an amount drift is whole cents (5) or a percentage ("0.5%"), not {drift!r}')


@dataclass(frozen=True)
class Window:
    """The days a run of `day` looks at, and where each begins (microseconds, UTC)."""

    days: tuple[date, ...]
    starts_us: tuple[int, ...]
    end_us: int


def window(process: Process, day: date) -> Window:
    """From `expiry_days` before `day` to the end of `day`, in the process's time zone."""
    days = tuple(day - timedelta(days=n) for n in range(process.expiry_days, -1, -1))
    starts = tuple(day_start_us(process, d) for d in days)
    return Window(days, starts, day_start_us(process, day + timedelta(days=1)))


def day_start_us(process: Process, day: date) -> int:
    moment = datetime(day.year, day.month, day.day, tzinfo=process.zone)
    return int(moment.timestamp()) * 1_000_000


def day_of(process: Process, time_us: int) -> date:
    return datetime.fromtimestamp(time_us // 1_000_000, process.zone).date()
