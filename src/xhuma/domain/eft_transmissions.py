"""Transmission numbers of inbound EFT files (layout §9), as a pure rule.

A file's transmission key is sender code / destination code / data status / transmission
number. Numbers rise by one per stream (sender, destination, status): a number already used
by an accepted file is a repeat, and the file is refused; a number more than one past the
highest accepted one is a gap (files are missing), and the file is still taken. Both are
reconciliation exceptions an operator settles."""

from __future__ import annotations

from dataclasses import dataclass

GAP = "eft_transmission_gap"
REPEAT = "eft_transmission_repeat"


@dataclass(frozen=True)
class TransmissionKey:
    sender: int
    destination: int
    status: str
    number: int

    @classmethod
    def parse(cls, key: str) -> TransmissionKey:
        """From its stored form, `09000/45001/T/0001000`."""
        sender, destination, status, number = key.split("/")
        return cls(int(sender), int(destination), status, int(number))

    @property
    def stream(self) -> str:
        """The stored prefix every key of this stream starts with."""
        return f"{self.sender:05d}/{self.destination:05d}/{self.status}/"

    def __str__(self) -> str:
        return f"{self.stream}{self.number:07d}"


@dataclass(frozen=True)
class Finding:
    reason: str
    """GAP or REPEAT"""
    detail: str
    refuse: bool
    """True when the file must not be taken."""


def judge_transmission(key: TransmissionKey, *, last_seen: int | None, used_by: int | None) -> Finding | None:
    """What a new file's transmission number says, given the highest number accepted so far in
    its stream (None: the stream's first file) and the accepted file that already carries its
    key (None: no such file). None when the number is in order, or fills an earlier gap."""
    if used_by is not None:
        return Finding(REPEAT, f"transmission {key} was already used by file {used_by}", refuse=True)
    if last_seen is not None and key.number > last_seen + 1:
        first, last = last_seen + 1, key.number - 1
        missing = f"{first:07d}" if first == last else f"{first:07d} to {last:07d}"
        return Finding(
            GAP, f"transmission {key} follows {last_seen:07d} of its stream: {missing} missing", refuse=False
        )
    return None
