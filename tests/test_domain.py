"""The transaction life cycle and outcome rules, checked exhaustively and by property."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from xhuma.domain.outcomes import Outcome, classify_status, judge_money_answer
from xhuma.domain.transactions import ADVICE_KINDS, IN_FLIGHT, Kind, State, after_advice, after_outcome

events = st.lists(st.one_of(st.sampled_from(list(Outcome)), st.sampled_from(sorted(ADVICE_KINDS))), max_size=12)


def play(state: State, sequence: list[Outcome | Kind]) -> list[State]:
    seen = [state]
    for event in sequence:
        state = after_outcome(state, event) if isinstance(event, Outcome) else after_advice(state, event)
        seen.append(state)
    return seen


@given(st.integers(min_value=100, max_value=599) | st.none())
def test_status_classes(status: int | None) -> None:
    outcome = classify_status(status)
    if status is None or status in (500, 504):
        assert outcome is Outcome.UNKNOWN
    elif 200 <= status < 300:
        assert outcome is Outcome.SUCCESSFUL
    else:
        assert outcome is Outcome.FAILED  # 503 included: final, as the interface says


@given(events)
def test_advised_outcomes_never_change(sequence: list[Outcome | Kind]) -> None:
    states = play(State.SENT_UPSTREAM, sequence)
    for before, after in zip(states, states[1:], strict=False):
        if before in (State.CONFIRMED, State.REVERSED):
            assert after == before


@given(events)
def test_a_known_outcome_never_becomes_unknown_again(sequence: list[Outcome | Kind]) -> None:
    states = play(State.SENT_UPSTREAM, sequence)
    for before, after in zip(states, states[1:], strict=False):
        if before not in IN_FLIGHT:
            assert after not in IN_FLIGHT


@given(events)
def test_a_decline_gives_way_only_to_a_success_for_the_same_id(sequence: list[Outcome | Kind]) -> None:
    """A provider that sold a purchase sold it, whatever an earlier answer said: the journal
    must then show the sale (it once held that a decline is never replaced, which let a sold
    token be journalled declined and its advices be dropped)."""
    states = play(State.SENT_UPSTREAM, sequence)
    for event, before, after in zip(sequence, states[:-1], states[1:], strict=True):
        if before is State.DECLINED and after is not State.DECLINED:
            assert event is Outcome.SUCCESSFUL and after is State.APPROVED
        if before in (State.APPROVED, State.CONFIRMED, State.REVERSED):
            assert after is not State.DECLINED


@given(events)
def test_only_an_approved_purchase_is_confirmed(sequence: list[Outcome | Kind]) -> None:
    states = play(State.SENT_UPSTREAM, sequence)
    for event, before, after in zip(sequence, states[:-1], states[1:], strict=True):
        if after is State.CONFIRMED and before is not State.CONFIRMED:
            assert before is State.APPROVED and event in (Kind.CONFIRMATION, Kind.KEY_CHANGE_CONFIRMATION)


def test_the_expected_paths() -> None:
    assert play(State.SENT_UPSTREAM, [Outcome.SUCCESSFUL, Kind.CONFIRMATION])[-1] is State.CONFIRMED
    assert play(State.SENT_UPSTREAM, [Outcome.UNKNOWN, Outcome.SUCCESSFUL])[-1] is State.APPROVED
    assert play(State.SENT_UPSTREAM, [Outcome.UNKNOWN, Kind.REVERSAL])[-1] is State.REVERSED
    # A reversal that overtakes the provider's late approval keeps the purchase reversed.
    assert play(State.SENT_UPSTREAM, [Kind.REVERSAL, Outcome.SUCCESSFUL])[-1] is State.REVERSED
    assert play(State.SENT_UPSTREAM, [Outcome.FAILED, Kind.REVERSAL])[-1] is State.DECLINED
    assert play(State.SENT_UPSTREAM, [Outcome.FAILED, Outcome.SUCCESSFUL])[-1] is State.APPROVED
    assert play(State.SENT_UPSTREAM, [Outcome.SUCCESSFUL, Outcome.FAILED])[-1] is State.APPROVED


@given(
    st.sampled_from(list(Outcome)),
    st.integers(min_value=100, max_value=599) | st.none(),
    st.sampled_from([None, "DUPLICATE_RECORD", "TRANSACTION_DECLINED", "UNKNOWN_METER_ID"]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_only_a_verdict_on_our_own_id_ends_a_money_request(
    outcome: Outcome, status: int | None, error_type: str | None, retrieving: bool, has_goods: bool, reached: bool
) -> None:
    judged = judge_money_answer(
        outcome, status, error_type, retrieving=retrieving, has_goods=has_goods, reached=reached
    )
    if outcome is Outcome.SUCCESSFUL:
        assert judged is (Outcome.SUCCESSFUL if has_goods else Outcome.UNKNOWN)  # defect 7
    elif outcome is Outcome.UNKNOWN or error_type == "DUPLICATE_RECORD" or status == 404:
        assert judged is Outcome.UNKNOWN  # defect 2: our own id, answered "I have it" or "lost"
    elif retrieving and (not reached or status in (None, 408, 425, 429, 502, 503)):
        assert judged is Outcome.UNKNOWN  # defect 6: a retry unheard says nothing of the sale
    else:
        assert judged is Outcome.FAILED


def test_every_request_that_moves_money_is_recovered_or_queued() -> None:
    from xhuma.eft.delivery import KINDS as EFT_KINDS
    from xhuma.vouchers.delivery import RECOVERED_KINDS

    money = {k for k in Kind if k.moves_money}
    assert money == {
        Kind.PURCHASE,
        Kind.VOUCHER_PROVISION,
        Kind.REDEMPTION,
        Kind.REFUND,
        Kind.EFT_CREDIT,
        Kind.EFT_DEBIT,
    }
    # Recovery scans what a process holds in flight; EFT is queued in the commit that opens it.
    assert money == {Kind.PURCHASE} | RECOVERED_KINDS | ({Kind.EFT_CREDIT, Kind.EFT_DEBIT} & set(EFT_KINDS.values()))


def test_the_state_each_voucher_request_leaves_follows_the_transitions() -> None:
    from xhuma.domain.vouchers import LEFT_BY, Event, left_by, transition

    advices = {
        Kind.VOUCHER_PROVISION: (Event.CONFIRM_PROVISION, Event.REVERSE_PROVISION),
        Kind.REDEMPTION: (Event.CONFIRM_REDEEM, Event.REVERSE_REDEEM),
        Kind.REFUND: (Event.CONFIRM_REFUND, Event.REVERSE_REFUND),
    }
    for kind, (confirm, reverse) in advices.items():
        approved = LEFT_BY[kind][State.APPROVED]
        assert transition(approved, confirm) == LEFT_BY[kind][State.CONFIRMED]
        assert transition(approved, reverse) == LEFT_BY[kind][State.REVERSED]
        assert all(left_by(kind, s) == approved for s in IN_FLIGHT)
        assert left_by(kind, State.DECLINED) is None
