"""The run state machine: every transition is either allowed or refused with a clear message."""

from __future__ import annotations

import pytest

from backwatch.domain.lifecycle import RunStatus, check_transition, is_terminal, parse_status
from backwatch.errors import IllegalTransition

S = RunStatus
FINAL = [S.SUCCESS, S.WARNING, S.FAILED, S.CANCELLED, S.TIMED_OUT, S.SKIPPED, S.UNKNOWN]

# Written out by hand (not derived from the code under test): current → allowed targets.
EXPECTED: dict[RunStatus | None, set[RunStatus]] = {
    None: set(S),  # a report may arrive in any state
    S.QUEUED: {S.RUNNING, *FINAL},
    S.RUNNING: set(FINAL),
    **{final: set() for final in FINAL},
}

PAIRS = [(current, target) for current in EXPECTED for target in S]


@pytest.mark.parametrize(
    ("current", "target"), PAIRS, ids=[f"{c.value if c else 'new'}->{t.value}" for c, t in PAIRS]
)
def test_every_transition_is_allowed_or_refused(current, target):
    if target in EXPECTED[current]:
        check_transition("r1", current, target)
        return
    with pytest.raises(IllegalTransition) as err:
        check_transition("r1", current, target)
    message = err.value.message
    assert "r1" in message
    assert target.value in message
    if current in FINAL:
        assert f"already finished as {current.value}" in message
    else:
        assert (current.value if current else "new") in message
    assert err.value.status == 409


def test_finishing_twice_says_so():
    with pytest.raises(IllegalTransition, match="already finished as success"):
        check_transition("nightly-1", S.SUCCESS, S.FAILED)


@pytest.mark.parametrize(
    ("text", "status"),
    [("success", S.SUCCESS), (" Failed ", S.FAILED), ("TIMED_OUT", S.TIMED_OUT)],
)
def test_parse_status_accepts_any_case(text, status):
    assert parse_status(text) is status


@pytest.mark.parametrize("text", ["ok", "", "succes", None, 1])
def test_parse_status_lists_the_valid_names(text):
    with pytest.raises(ValueError) as err:
        parse_status(text)
    for name in ("success", "warning", "failed", "timed_out"):
        assert name in str(err.value)


def test_terminal_states():
    assert all(is_terminal(s) for s in FINAL)
    assert not is_terminal("running")
    assert not is_terminal(S.QUEUED)
