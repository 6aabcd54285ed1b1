"""What the guide recommends instead, when a case is declined (SPEC.md section 4)."""

from __future__ import annotations

from workflow.casefacts import CaseFacts
from workflow.guards import GUARDS, below_limit, recent_blood_pressure

FLAG_CONTRAINDICATIONS = (
    "contraindication.substance_use",
    "contraindication.psychosis",
    "contraindication.respiratory",
)


def referrals_for(facts: CaseFacts) -> list[str]:
    """Referral codes for a declined case: cbt_i, orexin_antagonist, psychiatric_care."""
    h = facts.history
    referrals = []
    if h is None or not h.cbti_completed:
        referrals.append("cbt_i")
    if GUARDS["criteria.mood_disorder"](facts) is not None:
        # Insomnia not driven by a mood disorder: daridorexant, lemborexant, suvorexant.
        referrals.append("orexin_antagonist")
    if h is not None and _contraindication_found(facts):
        referrals.append("psychiatric_care")
    return referrals


def _contraindication_found(facts: CaseFacts) -> bool:
    """A contraindication found in the record; a reading not yet taken is not one."""
    if any(GUARDS[code](facts) is not None for code in FLAG_CONTRAINDICATIONS):
        return True
    if facts.history is not None and facts.history.uncontrolled_hypertension:
        return True
    found = recent_blood_pressure(facts)
    return found is not None and not below_limit(found[0], facts.rules)
