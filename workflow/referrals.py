"""What the guide recommends instead, when a case is declined (SPEC.md 4.7), as one table.

Read a row as: when the requirement ``answers`` fails on the facts on file,
refer the patient to each of ``referrals``. No referral is made from missing
data alone: a row applies only when what its requirement judges is on file
(``on_file``), so a history never taken or a reading never made refers no one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from workflow.casefacts import CaseFacts
from workflow.guards import GUARDS, latest_reading

GUIDE = "the guide"


def history_on_file(facts: CaseFacts) -> bool:
    return facts.history is not None


def blood_pressure_on_file(facts: CaseFacts) -> bool:
    """The history says hypertension is uncontrolled, or a reading was taken."""
    history = facts.history
    if history is None:
        return False
    return bool(history.uncontrolled_hypertension) or latest_reading(facts) is not None


def mood_judged(facts: CaseFacts) -> bool:
    """With the history on file, a PHQ-9 and a GAD-7 are too, or the clinician judged the
    insomnia not mood-driven.

    ``insomnia_mood_driven`` comes with the patient profile's history fields; a history
    without it has made no such judgement.
    """
    if facts.history is None:
        return False
    scored = all(facts.latest_assessment(i) is not None for i in ("phq9", "gad7"))
    return scored or getattr(facts.history, "insomnia_mood_driven", None) is False


@dataclass(frozen=True)
class ReferralRule:
    """A failed requirement, and where the guide sends the patient instead."""

    answers: str
    referrals: tuple[str, ...]
    on_file: Callable[[CaseFacts], bool] = history_on_file
    unless: tuple[str, ...] = ()
    """Not when any of these requirements failed too."""
    source: str = GUIDE


REFERRAL_RULES: tuple[ReferralRule, ...] = (
    ReferralRule("criteria.cbti_trial", ("cbt_i",), source="the guide: CBT-I is first line"),
    ReferralRule("criteria.not_sleep_med_replacement", ("cbt_i",)),
    ReferralRule(
        "criteria.mood_disorder",
        ("orexin_antagonist", "cbt_i"),
        on_file=mood_judged,
        unless=("contraindication.substance_use",),
        source="the guide: primary insomnia without a mood disorder: CBT-I, daridorexant, "
        "lemborexant, suvorexant",
    ),
    ReferralRule("criteria.treatment_resistant", ("psychiatric_care",)),
    ReferralRule("contraindication.psychosis", ("psychiatric_care",)),
    ReferralRule("contraindication.substance_use", ("psychiatric_care", "addiction_medicine")),
    ReferralRule("contraindication.respiratory", ("sleep_medicine",)),
    ReferralRule(
        "contraindication.hypertension", ("primary_care",), on_file=blood_pressure_on_file
    ),
    ReferralRule("contraindication.cardiovascular", ("primary_care",)),
)


def referrals_for(facts: CaseFacts) -> list[dict[str, Any]]:
    """The declined case's referrals, each ``{"referral": ..., "answers": <code>}``.

    A row whose requirement has no guard yet (``contraindication.cardiovascular``
    arrives with the patient profile's history fields) cannot fail, so refers no one.
    """
    failed = {
        rule.answers: GUARDS[rule.answers](facts) is not None
        for rule in REFERRAL_RULES
        if rule.answers in GUARDS
    }
    found = []
    for rule in REFERRAL_RULES:
        if not failed.get(rule.answers) or not rule.on_file(facts):
            continue
        if any(failed.get(code) for code in rule.unless):
            continue
        found += [{"referral": r, "answers": rule.answers} for r in rule.referrals]
    return found
