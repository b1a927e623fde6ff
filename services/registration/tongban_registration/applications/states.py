"""The application state machine: which action moves which state, and who may take it.

draft ──submit──▶ submitted ──claim──▶ under_review ──approve──▶ approved
  ▲                                      │      ├──reject───▶ rejected
update                                   │      └──return───▶ returned ──submit──▶ resubmitted
                                         ◀──────────────claim─────────────────────────┘
withdraw: from any state before a decision ─▶ withdrawn
"""

from __future__ import annotations

from enum import StrEnum

from tongban_kit.errors import Conflict


class Status(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    APPROVED = "approved"
    REJECTED = "rejected"
    RETURNED = "returned"
    RESUBMITTED = "resubmitted"
    WITHDRAWN = "withdrawn"


class Action(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    SUBMIT = "submit"
    WITHDRAW = "withdraw"
    CLAIM = "claim"
    APPROVE = "approve"
    REJECT = "reject"
    RETURN = "return"


#: action -> {from state: to state}
_MOVES: dict[Action, dict[Status, Status]] = {
    Action.UPDATE: {Status.DRAFT: Status.DRAFT, Status.RETURNED: Status.RETURNED},
    Action.SUBMIT: {Status.DRAFT: Status.SUBMITTED, Status.RETURNED: Status.RESUBMITTED},
    Action.WITHDRAW: {
        s: Status.WITHDRAWN
        for s in (
            Status.DRAFT,
            Status.SUBMITTED,
            Status.UNDER_REVIEW,
            Status.RETURNED,
            Status.RESUBMITTED,
        )
    },
    Action.CLAIM: {Status.SUBMITTED: Status.UNDER_REVIEW, Status.RESUBMITTED: Status.UNDER_REVIEW},
    Action.APPROVE: {Status.UNDER_REVIEW: Status.APPROVED},
    Action.REJECT: {Status.UNDER_REVIEW: Status.REJECTED},
    Action.RETURN: {Status.UNDER_REVIEW: Status.RETURNED},
}

APPLICANT_ACTIONS = frozenset({Action.UPDATE, Action.SUBMIT, Action.WITHDRAW})
OFFICER_ACTIONS = frozenset({Action.CLAIM, Action.APPROVE, Action.REJECT, Action.RETURN})

#: States waiting for an officer: the statutory clock runs.
PENDING = (Status.SUBMITTED, Status.RESUBMITTED, Status.UNDER_REVIEW)
#: States in which the proposed name stays reserved.
LIVE = (Status.DRAFT, *PENDING, Status.RETURNED)


def allowed_actions(status: Status, *, officer: bool = False) -> list[str]:
    """The actions the applicant (or an officer) can take from ``status``, in a stable order."""
    mine = OFFICER_ACTIONS if officer else APPLICANT_ACTIONS
    return [a.value for a in Action if a in mine and status in _MOVES.get(a, {})]


def move(status: Status, action: Action, *, officer: bool = False) -> Status:
    """The state ``action`` leads to, or a 409 naming the current state and what is allowed."""
    target = _MOVES[action].get(status)
    if target is None:
        raise Conflict(
            f"cannot {action.value} an application that is {status.value}",
            current_status=status.value,
            allowed_actions=allowed_actions(status, officer=officer),
        )
    return target
