"""Classify a free-text medication name against the drug table.

Known names are found as whole-word phrases, longest first, wherever they sit in
the text; a phrase also matches with its words run together ("oxy-codone"). Dose
words, forms, release suffixes, salts and connectors ("and", "with") are ignored
between names. A combination gets every class it contains, and any other word
run adds ``unknown``. Nothing here raises on any input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from workflow.drugs.normalise import compact, fold, scripts, tokens, within
from workflow.drugs.table import RANK, UNKNOWN, DrugTable, NameRow, current_table

# Compared without the spaces of a multi-word name; longer text is not a near miss.
_LONGEST_NEAR_MISS = 40
_HAS_DIGIT = re.compile(r"\d")
# How many words a name spread letter by letter may take ("x a n a x").
_LONGEST_SPREAD = _LONGEST_NEAR_MISS

NOISE = frozenset(
    # units and dose words
    "mg mcg ug g gm gram grams kg ml l iu unit units meq mmol percent pct dose doses "
    "strength extra regular maximum max mini low high half quarter double "
    # forms and routes
    "tab tabs tablet tablets cap caps capsule capsules softgel softgels gelcap caplet caplets "
    "solution soln oral syrup suspension susp elixir liquid drops drop injection inj injectable "
    "vial ampule patch patches transdermal spray sprays nasal inhaler inhalation inh nebulizer "
    "cream ointment gel lotion topical film films sublingual sl buccal chewable chew lozenge "
    "powder packet suppository rectal vaginal ophthalmic otic pen kit autoinjector "
    "disintegrating dispersible orally effervescent granules concentrate intensol "
    # release suffixes
    "er xr cr sr la xl dr ir odt ec sa cd hs xt mr ds es ls sf pf ta ter "
    "extended delayed immediate sustained controlled modified release released acting "
    # salts and esters
    "hcl hbr hydrochloride hydrobromide dihydrochloride tartrate bitartrate mesylate maleate "
    "succinate besylate citrate sulfate sulphate phosphate acetate fumarate hyclate "
    "monohydrate dihydrate trihydrate anhydrous base free salt sodium potassium calcium "
    "magnesium bromide chloride oxalate napsylate pamoate lactate gluconate valerate "
    "propionate dipropionate furoate xinafoate disodium dimesylate embonate "
    # connectors and directions
    "and with plus w or per a an the of in to for as at by on "
    "daily bid tid qid qd qhs qam qpm prn hs am pm nightly bedtime morning evening night "
    "once twice times day days week weekly month monthly needed every each "
    "take takes taking by mouth po iv im sc subq generic brand usp nf otc rx".split()
)


@dataclass(frozen=True)
class Classification:
    """What the table makes of a name."""

    drug_classes: tuple[str, ...]
    drug_class: str
    washout_days: int
    notes: tuple[str, ...] = ()
    """Why a part is unknown: mixed scripts, a near miss ("did you mean ..."), no name."""


def most_severe(drug_classes: tuple[str, ...] | list[str], table: DrugTable) -> str:
    """The first class of the highest severity, in table order (SPEC.md 4.3)."""
    if not drug_classes:
        return UNKNOWN
    return min(drug_classes, key=lambda c: (-RANK[table.severity(c)], _order(c, table)))


def _order(drug_class: str, table: DrugTable) -> int:
    return table.order(drug_class) if drug_class in table.interactions else len(table.interactions)


def washout_of(drug_classes: tuple[str, ...] | list[str], table: DrugTable) -> int:
    """The longest washout of the given classes."""
    days = [table.interactions[c].washout_days for c in drug_classes if c in table.interactions]
    return max(days, default=0)


def _near_misses(words: list[str], table: DrugTable) -> list[str]:
    candidates = {compact(words), *words}
    found: list[str] = []
    for candidate in sorted(candidates, key=len, reverse=True):
        if len(candidate) < 3 or len(candidate) > _LONGEST_NEAR_MISS:
            continue
        for name in table.resembling(candidate):
            limit = 1 if min(len(name), len(candidate)) < 5 else 2
            if name not in found and within(candidate, name, limit):
                found.append(name)
    return found


def _unknown_part(words: list[str], table: DrugTable) -> str:
    text = " ".join(words)
    resembles = _near_misses(words, table)
    if resembles:
        return f"{text!r} is not in the drug table; did you mean {' or '.join(resembles[:3])}?"
    return f"{text!r} is not in the drug table"


def _match(words: list[str], start: int, table: DrugTable) -> tuple[NameRow, int] | None:
    # A name's letters may be spread over many "words" ("chlordiaze-p-o-x-i-d-e"), so
    # run-together windows reach further than the table's longest spaced name.
    for size in range(min(_LONGEST_SPREAD, len(words) - start), 0, -1):
        phrase = words[start : start + size]
        row = table.compact_names.get(compact(phrase))
        if row is None and size <= table.longest:
            row = table.names.get(" ".join(phrase))
        if row is not None:
            return row, size
    return None


def _unknown(note: str, table: DrugTable) -> Classification:
    return Classification((UNKNOWN,), UNKNOWN, washout_of([UNKNOWN], table), (note,))


def classify_name(name: str, table: DrugTable | None = None) -> Classification:
    """Every class the name contains; ``unknown`` for any part the table cannot name."""
    table = table or current_table()
    mixed = {s for s in scripts(fold(name))}
    if len(mixed) > 1:
        return _unknown(f"the name mixes scripts ({', '.join(sorted(mixed))})", table)
    words = tokens(name)
    rows: list[NameRow] = []
    runs: list[list[str]] = [[]]
    start = 0
    while start < len(words):
        found = _match(words, start, table)
        if found is not None:
            rows.append(found[0])
            runs.append([])
            start += found[1]
            continue
        word = words[start]
        if word in NOISE or _HAS_DIGIT.search(word):
            runs.append([])
        else:
            runs[-1].append(word)
        start += 1
    notes = [_unknown_part(run, table) for run in runs if run]
    if notes and not any(table.is_watched(c) for row in rows for c in row.drug_classes):
        # Letters spread over words ("x a n a x", "alp razolam"): read them together too.
        letters = compact([w for w in words if not _HAS_DIGIT.search(w)])
        resembles = [n for n in _near_misses([letters], table) if n not in " ".join(notes)]
        if resembles:
            notes.append(f"read together the letters resemble {' or '.join(resembles[:3])}")
    if not rows and not notes:
        return _unknown("no medicine name found (only doses, forms or punctuation)", table)
    classes = list(dict.fromkeys(c for row in rows for c in row.drug_classes))
    if notes:
        classes.append(UNKNOWN)
    washouts = [
        row.washout_days if row.washout_days is not None else washout_of(row.drug_classes, table)
        for row in rows
    ]
    return Classification(
        tuple(classes),
        most_severe(classes, table),
        max([*washouts, washout_of([UNKNOWN], table) if notes else 0]),
        tuple(notes),
    )


def classify(name: str, table: DrugTable | None = None) -> str:
    """The name's ``drug_class``: the most severe of the classes it contains."""
    return classify_name(name, table).drug_class
