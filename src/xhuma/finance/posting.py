"""The general-ledger posting of an approved settlement: a balanced journal, as CSV.

Pure: a settlement (as `settlement.settlement` reads it) and its counterparty's accounts in,
journal lines out; no I/O but the writer it is given. Each line is a signed amount in integer
cents, a debit when positive and a credit when negative:

- principal (its account): + the principal when we owe it (settling clears our liability),
  - the principal when the counterparty owes it;
- each fee rule (the fees account): - the fee when the counterparty pays it (our income),
  + the fee when we pay it;
- settlement (the bank account that pays or receives the net): minus the sum of the others.

So the journal balances by construction (debits equal credits), and the settlement line is the
net position: a credit of what we pay the counterparty, or a debit of what it pays us."""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, Any

from xhuma.finance.fees import Accounts

HEADER = ("journal", "date", "line", "account", "debit", "credit", "currency", "counterparty", "description")


@dataclass(frozen=True)
class JournalLine:
    account: str
    amount: int
    """Cents: > 0 a debit, < 0 a credit."""
    description: str

    @property
    def debit(self) -> int:
        return max(self.amount, 0)

    @property
    def credit(self) -> int:
        return max(-self.amount, 0)


def journal(settled: Mapping[str, Any], accounts: Accounts) -> list[JournalLine]:
    """The settlement's lines (zero lines left out); their amounts sum to zero."""
    principal = settled["principal"] if settled["principal_payer"] == "us" else -settled["principal"]
    lines = [
        JournalLine(
            accounts.principal,
            principal,
            f"principal: approved {settled['approved']}, reversed {settled['reversed']}, "
            f"refunded {settled['refunded']} (cents)",
        )
    ]
    by_rule: dict[tuple[str, str], int] = {}
    for fee in settled["fees"]:
        key = (fee["rule"], fee["payer"])
        by_rule[key] = by_rule.get(key, 0) + fee["amount"]
    for (rule, payer), amount in sorted(by_rule.items()):
        signed = -amount if payer == "counterparty" else amount
        lines.append(JournalLine(accounts.fees, signed, f"fee {rule} (paid by {payer})"))
    net = sum(line.amount for line in lines)
    lines.append(JournalLine(accounts.settlement, -net, f"settlement: {settled['direction']}"))
    return [line for line in lines if line.amount]


def write_csv(settled: Mapping[str, Any], lines: list[JournalLine], out: IO[str], money: Callable[[int], str]) -> None:
    """One row per line; `money` formats cents (a decimal with two places)."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER)
    for number, line in enumerate(lines, start=1):
        writer.writerow(
            (
                settled["id"],
                settled["to_day"],
                number,
                line.account,
                money(line.debit) if line.debit else "",
                money(line.credit) if line.credit else "",
                settled["currency"] or "",
                settled["counterparty"],
                line.description,
            )
        )
