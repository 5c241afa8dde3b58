"""Checking a whole EFT file, streaming: one record at a time, memory flat in the file's size.

`FileCheck.feed` takes the file's lines in order and returns, for each transaction record, the
row to keep; the first rule broken raises `RecordError` naming line, field and reason (§8).
The caller applies nothing until `finish` returns, so a bad file is never half applied."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from xhuma.eft.layout import LAYOUTS, RECORD_LENGTH, Field, kind_of
from xhuma.eft.records import RecordError, parse_record

LEAD_DAYS = {"SAMEDAY": 0, "ONE DAY": 1, "TWO DAY": 2, "CORPSSV": 0, "INTERNAL": 0}
ACCOUNT_TYPES = frozenset({1, 2, 3, 4, 6})
DEBIT_CLASSES = frozenset({31, 32, 33, 34, 35, 36, 37, 38, 39, 44, 46, 47})
SEC_REASONS = frozenset({1, 2, 3, 4, 5, 99})
MAX_TRANSACTIONS_PER_SET = 100_000
MAX_CONTRAS_PER_SET = 200
USER_CODE = re.compile(r"[A-Z0-9]{4}")
NOT_PRINTABLE = re.compile(rb"[^\x20-\x7e]")
INBOUND = {"PAYMENTS": "001", "SEC": "005"}
CONTENT_TYPES = (*INBOUND, "UNPAIDS", "SECFAIL")
SEC_FAILURES = frozenset({101, 102, 103, 104, 105})
UNPAID_CODES = {
    2: "D",
    3: "D",
    4: "D",
    5: "CD",
    6: "CD",
    8: "CD",
    10: "CD",
    12: "CD",
    14: "CD",
    16: "CD",
    18: "CD",
    22: "D",
    26: "CD",
    28: "CD",
    30: "D",
    32: "D",
    34: "D",
    36: "D",
    56: "CD",
}
"""§10.3: the unpaid reasons, and which originals (Credits, Debits) each may return."""


def _field(kind: str, name: str) -> Field:
    return next(f for f in LAYOUTS[kind] if f.name == name)


def hash_value(record: dict[str, Any]) -> int:
    """The homing account, or the last 11 digits of a non-standard account number."""
    return int(record["homing account"]) or int(record["nonstandard account"]) % 10**11


@dataclass
class OpenGroup:
    """The standard records a contra has yet to close (§4.5 rule 2)."""

    count: int = 0
    total: int = 0
    action_date: date | None = None
    user_branch: int | None = None
    user_account: int | None = None


@dataclass
class OpenSet:
    kind: str
    header: dict[str, Any]
    line: int
    next_sequence: int
    last_sequence: int = 0
    debit_count: int = 0
    credit_count: int = 0
    contra_count: int = 0
    transactions: int = 0
    debit_total: int = 0
    credit_total: int = 0
    hash_total: int = 0
    groups: dict[str, OpenGroup] = field(default_factory=lambda: {"10": OpenGroup(), "50": OpenGroup()})


@dataclass
class FileSummary:
    content_type: str
    data_status: str
    transmission_date: date
    sender_code: int
    destination_code: int
    transmission_number: int
    content_hash: str
    records: int
    set_keys: list[str]
    transactions: int
    credit_total: int
    debit_total: int

    @property
    def transmission_key(self) -> str:
        return f"{self.sender_code:05d}/{self.destination_code:05d}/{self.data_status}/{self.transmission_number:07d}"


class FileCheck:
    def __init__(self) -> None:
        self.line = 0
        self.header: dict[str, Any] | None = None
        self.open: OpenSet | None = None
        self.ended = False
        self.digest = hashlib.sha256()
        self.set_keys: list[str] = []
        self.originals: set[tuple[str, date, int]] = set()
        self.references: set[str] = set()
        self.transactions = 0
        self.credit_total = 0
        self.debit_total = 0

    def feed(self, raw: bytes) -> dict[str, Any] | None:
        """Check one line (with its LF); the transaction it holds, if any, as a dict."""
        self.line += 1
        number = self.line
        self.digest.update(raw)
        if self.ended:
            raise RecordError(number, None, "nothing may follow the transmission trailer")
        if not raw.endswith(b"\n"):
            self._bytes(raw, number)
            raise RecordError(number, None, "the record does not end with LF")
        body = raw[:-1]
        self._bytes(body, number)
        if len(body) != RECORD_LENGTH:
            raise RecordError(number, None, f"the record is {len(body)} characters long, not {RECORD_LENGTH}")
        line = body.decode("ascii")
        kind = kind_of(line)
        if kind is None:
            raise RecordError(number, _field("000", "record id"), f"unknown record {line[:3]!r}")
        values = parse_record(kind, line, number)
        status = values["data status"]
        if self.header is None:
            if kind != "000":
                raise RecordError(number, _field("000", "record id"), "a file starts with a transmission header 000")
            if status not in ("T", "L"):
                raise RecordError(number, _field(kind, "data status"), f"T or L, not {status!r}")
            self._transmission_header(values, number)
            return None
        if status != self.header["data status"]:
            raise RecordError(number, _field(kind, "data status"), f"{status!r} differs from the header's")
        return self._record(kind, values, number)

    def finish(self) -> FileSummary:
        if not self.ended:
            raise RecordError(self.line + 1, None, "the file ends before its transmission trailer 999")
        assert self.header is not None
        return FileSummary(
            content_type=self.header["content type"],
            data_status=self.header["data status"],
            transmission_date=self.header["transmission date"],
            sender_code=self.header["sender code"],
            destination_code=self.header["destination code"],
            transmission_number=self.header["transmission number"],
            content_hash=self.digest.hexdigest(),
            records=self.line,
            set_keys=self.set_keys,
            transactions=self.transactions,
            credit_total=self.credit_total,
            debit_total=self.debit_total,
        )

    # --- per record ---------------------------------------------------------------------------

    def _bytes(self, body: bytes, number: int) -> None:
        bad = NOT_PRINTABLE.search(body)
        if bad is None:
            return
        column = bad.start() + 1
        kind = kind_of(body[:6].decode("ascii", "replace"))
        where = next((f for f in LAYOUTS[kind] if f.start <= column <= f.end), None) if kind else None
        raise RecordError(number, where, f"byte 0x{body[bad.start()]:02X} is not printable ASCII", column=column)

    def _transmission_header(self, values: dict[str, Any], number: int) -> None:
        kind = "000"
        for name in ("sender code", "transmission number", "destination code"):
            if values[name] == 0:
                raise RecordError(number, _field(kind, name), "must not be zero")
        if not values["sender name"].strip():
            raise RecordError(number, _field(kind, "sender name"), "must not be blank")
        if values["content type"] not in CONTENT_TYPES:
            allowed = ", ".join(CONTENT_TYPES)
            raise RecordError(number, _field(kind, "content type"), f"{values['content type']!r}: one of {allowed}")
        self.header = values

    def _record(self, kind: str, values: dict[str, Any], number: int) -> dict[str, Any] | None:
        assert self.header is not None
        prefix = INBOUND.get(self.header["content type"], "011")
        if kind == "999":
            if self.open is not None:
                raise RecordError(
                    number, _field(kind, "record id"), f"set opened on line {self.open.line} has no trailer"
                )
            if not self.set_keys:
                raise RecordError(number, _field(kind, "record id"), "a file holds at least one set")
            if values["record count"] != number:
                raise RecordError(
                    number, _field(kind, "record count"), f"says {values['record count']}, the file has {number}"
                )
            self.ended = True
            return None
        if self.header["content type"] == "UNPAIDS":
            self._unpaid_record(kind, values, number)
            return None
        if self.header["content type"] == "SECFAIL":
            self._secfail_record(kind, values, number)
            return None
        if not kind.startswith(prefix + "/"):
            raise RecordError(
                number, _field(kind, "record id"), f"a {self.header['content type']} file holds {prefix} sets"
            )
        identifier = kind[4:]
        if identifier == "04":
            if self.open is not None:
                raise RecordError(
                    number, _field(kind, "record identifier"), f"set opened on line {self.open.line} has no trailer"
                )
            self._set_header(kind, values, number)
            return None
        if self.open is None:
            raise RecordError(number, _field(kind, "record identifier"), "a set starts with its header 04")
        if identifier == "92":
            self._set_trailer(kind, values, number)
            return None
        return self._transaction(kind, values, number)

    def _unpaid_record(self, kind: str, values: dict[str, Any], number: int) -> None:
        """An UNPAIDS file (§6): sets of returned originals, each with its totals and hash."""
        assert self.header is not None
        if kind not in ("011", "013", "014"):
            raise RecordError(number, _field(kind, "record id"), "an UNPAIDS file holds 011, 013 and 014 records")
        if kind == "011":
            if self.open is not None:
                raise RecordError(
                    number, _field(kind, "record id"), f"set opened on line {self.open.line} has no trailer"
                )
            if not USER_CODE.fullmatch(values["user code"]):
                raise RecordError(number, _field(kind, "user code"), "4 characters from A-Z and 0-9")
            for name in ("user branch", "user account"):
                if values[name] == 0:
                    raise RecordError(number, _field(kind, name), "must not be zero")
            if not values["original action date"] <= values["unpaid date"] <= self.header["transmission date"]:
                raise RecordError(
                    number, _field(kind, "unpaid date"), "before the original action date or after transmission"
                )
            account = f"{values['user branch']}/{values['user account']}"
            set_key = f"011/{values['user code']}/{account}/{values['original action date']:%y%m%d}"
            if set_key in self.set_keys:
                raise RecordError(number, _field(kind, "user code"), f"set {set_key} appears twice in the file")
            self.set_keys.append(set_key)
            self.open = OpenSet(kind, values, number, 1)
            return
        current = self.open
        if current is None:
            raise RecordError(number, _field(kind, "record id"), "a set starts with its header 011")
        if kind == "013":
            side = values["original identifier"]
            if side not in (10, 50):
                raise RecordError(number, _field(kind, "original identifier"), "10 or 50")
            if values["unpaid sequence number"] != current.next_sequence:
                raise RecordError(number, _field(kind, "unpaid sequence number"), f"expected {current.next_sequence}")
            original = (
                current.header["user code"],
                current.header["original action date"],
                values["original sequence number"],
            )
            if values["original sequence number"] == 0 or original in self.originals:
                raise RecordError(
                    number, _field(kind, "original sequence number"), "zero, or returned twice in the file"
                )
            self.originals.add(original)
            for name in ("homing branch", "amount"):
                if values[name] == 0:
                    raise RecordError(number, _field(kind, name), "must not be zero")
            if (values["homing account"] == 0) == (values["nonstandard account"] == 0):
                raise RecordError(
                    number,
                    _field(kind, "nonstandard account"),
                    "exactly one of homing account and nonstandard account is set",
                )
            code = values["rejection reason"]
            if "CD"[0 if side == 10 else 1] not in UNPAID_CODES.get(code, ""):
                raise RecordError(
                    number,
                    _field(kind, "rejection reason"),
                    f"0{code:02d} may not return a {'credit' if side == 10 else 'debit'}",
                )
            current.next_sequence += 1
            current.transactions += 1
            current.hash_total += hash_value(values)
            if side == 50:
                current.debit_count += 1
                current.debit_total += values["amount"]
            else:
                current.credit_count += 1
                current.credit_total += values["amount"]
            self.transactions += 1
            return
        self._outbound_trailer(kind, values, number)

    def _secfail_record(self, kind: str, values: dict[str, Any], number: int) -> None:
        """An SECFAIL file (§7): per SEC set, the corrections that were not applied."""
        assert self.header is not None
        if kind not in ("021", "023", "024"):
            raise RecordError(number, _field(kind, "record id"), "an SECFAIL file holds 021, 023 and 024 records")
        if kind == "021":
            if self.open is not None:
                raise RecordError(
                    number, _field(kind, "record id"), f"set opened on line {self.open.line} has no trailer"
                )
            if not USER_CODE.fullmatch(values["user code"]):
                raise RecordError(number, _field(kind, "user code"), "4 characters from A-Z and 0-9")
            if values["generation number"] == 0:
                raise RecordError(number, _field(kind, "generation number"), "must not be zero")
            if values["correction date"] < values["creation date"]:
                raise RecordError(number, _field(kind, "correction date"), "before the creation date")
            if not values["correction date"] <= values["response date"] <= self.header["transmission date"]:
                raise RecordError(number, _field(kind, "response date"), "before the correction or after transmission")
            set_key = f"021/{values['user code']}/{values['generation number']:04d}/{values['creation date']:%y%m%d}"
            if set_key in self.set_keys:
                raise RecordError(number, _field(kind, "generation number"), f"set {set_key} is answered twice")
            self.set_keys.append(set_key)
            self.open = OpenSet(kind, values, number, 1)
            return
        current = self.open
        if current is None:
            raise RecordError(number, _field(kind, "record id"), "a set starts with its header 021")
        if kind == "023":
            side = values["sec identifier"]
            if side not in (20, 60):
                raise RecordError(number, _field(kind, "sec identifier"), "20 or 60")
            if values["response sequence number"] != current.next_sequence:
                raise RecordError(number, _field(kind, "response sequence number"), f"expected {current.next_sequence}")
            if not USER_CODE.fullmatch(values["original user code"]):
                raise RecordError(number, _field(kind, "original user code"), "4 characters from A-Z and 0-9")
            if values["original action date"] > current.header["correction date"]:
                raise RecordError(number, _field(kind, "original action date"), "after the correction date")
            for name in ("sec sequence number", "original sequence number", "homing branch", "amount"):
                if values[name] == 0:
                    raise RecordError(number, _field(kind, name), "must not be zero")
            if (values["homing account"] == 0) == (values["nonstandard account"] == 0):
                raise RecordError(
                    number,
                    _field(kind, "nonstandard account"),
                    "exactly one of homing account and nonstandard account is set",
                )
            code = values["failure reason"]
            posting = "D" if side == 20 else "C"
            if code not in SEC_FAILURES and posting not in UNPAID_CODES.get(code, ""):
                raise RecordError(
                    number, _field(kind, "failure reason"), f"{code:03d} is not a failure code for a {side}"
                )
            if not values["correction reference"].strip():
                raise RecordError(number, _field(kind, "correction reference"), "must not be blank")
            current.next_sequence += 1
            current.transactions += 1
            current.hash_total += hash_value(values)
            if side == 20:
                current.debit_count += 1
                current.debit_total += values["amount"]
            else:
                current.credit_count += 1
                current.credit_total += values["amount"]
            self.transactions += 1
            return
        self._outbound_trailer(kind, values, number)

    def _outbound_trailer(self, kind: str, values: dict[str, Any], number: int) -> None:
        current = self.open
        assert current is not None
        if current.transactions == 0:
            raise RecordError(number, _field(kind, "record id"), "a set holds at least one record")
        expected = {
            "debit count": current.debit_count,
            "credit count": current.credit_count,
            "hash total": current.hash_total % 10**18,
            "debit total": current.debit_total,
            "credit total": current.credit_total,
        }
        for name, value in expected.items():
            if values[name] != value:
                raise RecordError(number, _field(kind, name), f"says {values[name]}, the records give {value}")
        self.credit_total += current.credit_total
        self.debit_total += current.debit_total
        self.open = None

    def _set_header(self, kind: str, values: dict[str, Any], number: int) -> None:
        assert self.header is not None
        sec = kind.startswith("005")
        if not USER_CODE.fullmatch(values["user code"]):
            raise RecordError(number, _field(kind, "user code"), "4 characters from A-Z and 0-9")
        if values["creation date"] > self.header["transmission date"]:
            raise RecordError(number, _field(kind, "creation date"), "after the transmission date")
        service = values["service type"]
        if sec and service != "SEC":
            raise RecordError(number, _field(kind, "service type"), "an SEC set's service type is SEC")
        if not sec and service not in LEAD_DAYS:
            raise RecordError(number, _field(kind, "service type"), f"{service!r}: one of {', '.join(LEAD_DAYS)}")
        lead = 0 if sec else LEAD_DAYS[service]
        if values["first action date"] < values["creation date"] + timedelta(days=lead):
            raise RecordError(
                number, _field(kind, "first action date"), f"{service} needs {lead} lead days after creation"
            )
        if values["last action date"] < values["first action date"]:
            raise RecordError(number, _field(kind, "last action date"), "before the first action date")
        if (sec or service == "SAMEDAY") and values["last action date"] != values["first action date"]:
            raise RecordError(number, _field(kind, "last action date"), f"{service}: must equal the first action date")
        if values["purge date"] < values["last action date"]:
            raise RecordError(number, _field(kind, "purge date"), "before the last action date")
        for name in ("first sequence number", "generation number"):
            if values[name] == 0:
                raise RecordError(number, _field(kind, name), "must not be zero")
        set_key = f"{kind[:3]}/{values['user code']}/{values['generation number']:04d}/{values['creation date']:%y%m%d}"
        if set_key in self.set_keys:
            raise RecordError(number, _field(kind, "generation number"), f"set {set_key} appears twice in the file")
        self.set_keys.append(set_key)
        self.open = OpenSet(kind, values, number, values["first sequence number"])

    def _transaction(self, kind: str, values: dict[str, Any], number: int) -> dict[str, Any]:
        current = self.open
        assert current is not None
        header = current.header
        identifier = kind[4:]
        contra = identifier in ("12", "52")
        sec = kind.startswith("005")
        if values["sequence number"] != current.next_sequence:
            seen = current.next_sequence > values["sequence number"] >= header["first sequence number"]
            reason = "duplicate sequence number" if seen else f"expected {current.next_sequence:06d}"
            raise RecordError(number, _field(kind, "sequence number"), reason)
        if sec:
            if not USER_CODE.fullmatch(values["user code"]):
                raise RecordError(number, _field(kind, "user code"), "4 characters from A-Z and 0-9")
        elif values["user code"] != header["user code"]:
            raise RecordError(number, _field(kind, "user code"), "differs from the set header's")
        for name in ("user branch", "user account", "homing branch", "amount"):
            if values[name] == 0:
                raise RecordError(number, _field(kind, name), "must not be zero")
        if values["account type"] not in ACCOUNT_TYPES:
            raise RecordError(number, _field(kind, "account type"), "one of 1, 2, 3, 4, 6")
        if not contra and (values["homing account"] == 0) == (values["nonstandard account"] == 0):
            raise RecordError(
                number,
                _field(kind, "nonstandard account"),
                "exactly one of homing account and nonstandard account is set",
            )
        if sec:
            self._sec_record(kind, values, number)
        elif contra:
            self._contra(kind, values, number)
        else:
            self._standard(kind, values, number)
        current.next_sequence += 1
        current.last_sequence = values["sequence number"]
        current.transactions += 1
        if current.transactions > MAX_TRANSACTIONS_PER_SET:
            raise RecordError(
                number, _field(kind, "sequence number"), f"a set holds at most {MAX_TRANSACTIONS_PER_SET} transactions"
            )
        current.hash_total += hash_value(values)
        debit_side = identifier in ("50", "12", "20")
        if debit_side:
            current.debit_count += 1
            current.debit_total += values["amount"]
        else:
            current.credit_count += 1
            current.credit_total += values["amount"]
        if contra:
            current.contra_count += 1
            if current.contra_count > MAX_CONTRAS_PER_SET:
                raise RecordError(
                    number, _field(kind, "record identifier"), f"a set holds at most {MAX_CONTRAS_PER_SET} contras"
                )
            return {}
        self.transactions += 1
        if identifier in ("10", "60"):
            self.credit_total += values["amount"]
        else:
            self.debit_total += values["amount"]
        found = {"kind": kind, "set key": self.set_keys[-1], "line": number, **values}
        if sec:
            found["correction date"] = header["first action date"]
        return found

    def _standard(self, kind: str, values: dict[str, Any], number: int) -> None:
        current = self.open
        assert current is not None
        header = current.header
        if not header["first action date"] <= values["action date"] <= header["last action date"]:
            raise RecordError(number, _field(kind, "action date"), "outside the set's action dates")
        credit = kind.endswith("10")
        if credit and values["entry class"] != 88:
            raise RecordError(number, _field(kind, "entry class"), "a credit's entry class is 88")
        if not credit and values["entry class"] not in DEBIT_CLASSES:
            raise RecordError(number, _field(kind, "entry class"), "not a debit entry class")
        reference = values["user reference"].ljust(30)
        if not reference[:10].strip():
            raise RecordError(number, _field(kind, "user reference"), "75-84 (the abbreviated user name) is blank")
        if not credit and not reference[10:24].strip():
            raise RecordError(
                number, _field(kind, "user reference"), "85-98 (the mandate reference) is blank on a debit"
            )
        if not values["homing account name"].strip():
            raise RecordError(number, _field(kind, "homing account name"), "must not be blank")
        group = current.groups[kind[4:]]
        if group.count == 0:
            group.action_date = values["action date"]
            group.user_branch = values["user branch"]
            group.user_account = values["user account"]
        elif (group.action_date, group.user_branch, group.user_account) != (
            values["action date"],
            values["user branch"],
            values["user account"],
        ):
            raise RecordError(
                number, _field(kind, "action date"), "differs in action date or user account from its contra group"
            )
        group.count += 1
        group.total += values["amount"]

    def _contra(self, kind: str, values: dict[str, Any], number: int) -> None:
        current = self.open
        assert current is not None
        closes = "10" if kind.endswith("12") else "50"
        group = current.groups[closes]
        if group.count == 0:
            raise RecordError(number, _field(kind, "record identifier"), f"closes no {closes} records")
        checks = (
            ("user branch", values["user branch"] == group.user_branch, "differs from its group's"),
            ("user account", values["user account"] == group.user_account, "differs from its group's"),
            ("homing branch", values["homing branch"] == values["user branch"], "a contra homes to the user's branch"),
            (
                "homing account",
                values["homing account"] == values["user account"],
                "a contra homes to the user's account",
            ),
            ("account type", values["account type"] == 1, "a contra's account type is 1"),
            ("amount", values["amount"] == group.total, f"says {values['amount']}, its group totals {group.total}"),
            ("action date", values["action date"] == group.action_date, "differs from its group's"),
            ("entry class", values["entry class"] == 10, "a contra's entry class is 10"),
            ("tax code", values["tax code"] == 0, "a contra's tax code is 0"),
            ("user reference", values["user reference"].ljust(30)[10:16] == "CONTRA", "85-90 must read CONTRA"),
            ("nonstandard account", values["nonstandard account"] == 0, "a contra's is zeros"),
        )
        for name, holds, reason in checks:
            if not holds:
                raise RecordError(number, _field(kind, name), reason)
        current.groups[closes] = OpenGroup()

    def _sec_record(self, kind: str, values: dict[str, Any], number: int) -> None:
        current = self.open
        assert current is not None
        if values["original action date"] > current.header["first action date"]:
            raise RecordError(number, _field(kind, "original action date"), "after the correction date")
        if values["original sequence number"] == 0:
            raise RecordError(number, _field(kind, "original sequence number"), "must not be zero")
        if values["sec reason"] not in SEC_REASONS:
            raise RecordError(number, _field(kind, "sec reason"), "one of 01, 02, 03, 04, 05, 99")
        reference = values["correction reference"]
        if not reference.strip():
            raise RecordError(number, _field(kind, "correction reference"), "must not be blank")
        if reference in self.references:
            raise RecordError(number, _field(kind, "correction reference"), "appears twice in the file")
        self.references.add(reference)
        original = (values["user code"], values["original action date"], values["original sequence number"])
        if original in self.originals:
            raise RecordError(
                number, _field(kind, "original sequence number"), "this original is corrected twice in the file"
            )
        self.originals.add(original)

    def _set_trailer(self, kind: str, values: dict[str, Any], number: int) -> None:
        current = self.open
        assert current is not None
        header = current.header
        for identifier, group in current.groups.items():
            if group.count:
                raise RecordError(
                    number, _field(kind, "record identifier"), f"{group.count} {identifier} records have no contra"
                )
        if current.transactions == 0:
            raise RecordError(number, _field(kind, "record identifier"), "a set holds at least one transaction")
        expected = {
            "user code": header["user code"],
            "first sequence number": header["first sequence number"],
            "last sequence number": current.last_sequence,
            "first action date": header["first action date"],
            "last action date": header["last action date"],
            "debit count": current.debit_count,
            "credit count": current.credit_count,
            "contra count": current.contra_count,
            "debit total": current.debit_total,
            "credit total": current.credit_total,
            "hash total": current.hash_total % 10**12,
        }
        for name, value in expected.items():
            if values[name] != value:
                shown = value.strftime("%y%m%d") if isinstance(value, date) else value
                raise RecordError(number, _field(kind, name), f"says {_shown(values[name])}, the records give {shown}")
        self.open = None


def _shown(value: Any) -> str:
    return value.strftime("%y%m%d") if isinstance(value, date) else str(value)


def check_file(path: str) -> FileSummary:
    """Check a whole file; the summary, or the first problem as `RecordError`."""
    checker = FileCheck()
    with open(path, "rb") as handle:
        for raw in handle:
            checker.feed(raw)
    if checker.line == 0:
        raise RecordError(1, None, "the file is empty")
    return checker.finish()
