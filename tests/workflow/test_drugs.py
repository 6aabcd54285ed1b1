"""Tests for workflow.drugs: the drug table, the interaction table and the screen."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from importlib import resources

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflow.drugs import (
    TAPER_CLASSES,
    Interaction,
    ScreeningResult,
    Severity,
    classify,
    drug_classes,
    interaction_for,
    screen,
)

# SPEC.md section 4's table, copied by hand so a bad CSV edit fails here.
SPEC_EXAMPLES = [
    ("alprazolam", "benzodiazepine"),
    ("Xanax", "benzodiazepine"),
    ("lorazepam", "benzodiazepine"),
    ("Ativan", "benzodiazepine"),
    ("clonazepam", "benzodiazepine"),
    ("Klonopin", "benzodiazepine"),
    ("diazepam", "benzodiazepine"),
    ("Valium", "benzodiazepine"),
    ("temazepam", "benzodiazepine"),
    ("Restoril", "benzodiazepine"),
    ("zolpidem", "z_drug"),
    ("Ambien", "z_drug"),
    ("eszopiclone", "z_drug"),
    ("Lunesta", "z_drug"),
    ("zaleplon", "z_drug"),
    ("Sonata", "z_drug"),
    ("phenelzine", "maoi"),
    ("tranylcypromine", "maoi"),
    ("selegiline", "maoi"),
    ("isocarboxazid", "maoi"),
    ("memantine", "nmda_antagonist"),
    ("Namenda", "nmda_antagonist"),
    ("dextromethorphan", "nmda_antagonist"),
    ("theophylline", "methylxanthine"),
    ("aminophylline", "methylxanthine"),
    ("oxycodone", "opioid"),
    ("hydrocodone", "opioid"),
    ("morphine", "opioid"),
    ("methadone", "opioid"),
    ("buprenorphine", "opioid"),
    ("tramadol", "opioid"),
    ("amphetamine", "stimulant"),
    ("Adderall", "stimulant"),
    ("methylphenidate", "stimulant"),
    ("Ritalin", "stimulant"),
    ("modafinil", "stimulant"),
    ("armodafinil", "stimulant"),
    ("lamotrigine", "lamotrigine"),
    ("Lamictal", "lamotrigine"),
    ("St John's wort", "cyp3a4_inducer"),
    ("St. John's Wort", "cyp3a4_inducer"),
    ("Saint John's Wort", "cyp3a4_inducer"),
    ("hypericum", "cyp3a4_inducer"),
    ("rifampicin", "cyp3a4_inducer"),
    ("rifampin", "cyp3a4_inducer"),
    ("carbamazepine", "cyp3a4_inducer"),
    ("levothyroxine", "thyroid_hormone"),
]

# Brand names beyond the SPEC's examples, and common medications with no interaction.
MORE_EXAMPLES = [
    ("Halcion", "benzodiazepine"),
    ("triazolam", "benzodiazepine"),
    ("chlordiazepoxide", "benzodiazepine"),
    ("Ambien CR", "z_drug"),
    ("Edluar", "z_drug"),
    ("Intermezzo", "z_drug"),
    ("zopiclone", "z_drug"),
    ("Nardil", "maoi"),
    ("Parnate", "maoi"),
    ("Emsam", "maoi"),
    ("Marplan", "maoi"),
    ("OxyContin", "opioid"),
    ("Percocet", "opioid"),
    ("Vicodin", "opioid"),
    ("Suboxone", "opioid"),
    ("Ultram", "opioid"),
    ("Concerta", "stimulant"),
    ("Vyvanse", "stimulant"),
    ("lisdexamfetamine", "stimulant"),
    ("dextroamphetamine", "stimulant"),
    ("Provigil", "stimulant"),
    ("Nuvigil", "stimulant"),
    ("Tegretol", "cyp3a4_inducer"),
    ("Rifadin", "cyp3a4_inducer"),
    ("Synthroid", "thyroid_hormone"),
    ("Levoxyl", "thyroid_hormone"),
    ("sertraline", "ssri"),
    ("Zoloft", "ssri"),
    ("fluoxetine", "ssri"),
    ("Prozac", "ssri"),
    ("escitalopram", "ssri"),
    ("Lexapro", "ssri"),
    ("citalopram", "ssri"),
    ("Celexa", "ssri"),
    ("paroxetine", "ssri"),
    ("Paxil", "ssri"),
    ("venlafaxine", "snri"),
    ("Effexor", "snri"),
    ("duloxetine", "snri"),
    ("Cymbalta", "snri"),
    ("desvenlafaxine", "snri"),
    ("Pristiq", "snri"),
    ("bupropion", "antidepressant_other"),
    ("Wellbutrin", "antidepressant_other"),
    ("mirtazapine", "antidepressant_other"),
    ("Remeron", "antidepressant_other"),
    ("trazodone", "antidepressant_other"),
    ("Desyrel", "antidepressant_other"),
    ("vortioxetine", "antidepressant_other"),
    ("Trintellix", "antidepressant_other"),
    ("daridorexant", "orexin_antagonist"),
    ("Quviviq", "orexin_antagonist"),
    ("lemborexant", "orexin_antagonist"),
    ("Dayvigo", "orexin_antagonist"),
    ("suvorexant", "orexin_antagonist"),
    ("Belsomra", "orexin_antagonist"),
    ("ketamine", "ketamine"),
    ("esketamine", "ketamine"),
    ("Spravato", "ketamine"),
]

# Classes in drug_names.csv that deliberately have no row in interactions.csv.
NO_INTERACTION = {"ssri", "snri", "antidepressant_other", "orexin_antagonist", "ketamine"}

SPEC_SEVERITIES = {
    "benzodiazepine": "taper_required",
    "z_drug": "taper_required",
    "maoi": "blocking",
    "nmda_antagonist": "blocking",
    "methylxanthine": "blocking",
    "opioid": "blocking",
    "stimulant": "caution",
    "lamotrigine": "caution",
    "cyp3a4_inducer": "caution",
    "thyroid_hormone": "caution",
    "unknown": "caution",
}


def read_csv(filename: str) -> list[dict[str, str]]:
    text = (resources.files("workflow") / "data" / filename).read_text(encoding="utf-8")
    return list(csv.DictReader(text.splitlines()))


@dataclass
class Med:
    id: int
    name: str
    drug_class: str
    status: str = "active"


def med(name: str, status: str = "active", id: int = 1) -> Med:
    return Med(id=id, name=name, drug_class=classify(name), status=status)


@pytest.mark.parametrize(("name", "drug_class"), SPEC_EXAMPLES + MORE_EXAMPLES)
def test_known_names_classify(name: str, drug_class: str) -> None:
    assert classify(name) == drug_class
    assert classify(name.upper()) == drug_class
    assert classify(f"  {name.lower()}  ") == drug_class


@pytest.mark.parametrize(
    ("text", "drug_class"),
    [
        ("Ambien 10mg", "z_drug"),
        ("XANAX 0.5 mg tablet", "benzodiazepine"),
        ("Ambien CR 12.5mg", "z_drug"),
        ("St. John's Wort 300 mg", "cyp3a4_inducer"),
        ("St Johns Wort", "cyp3a4_inducer"),
        ("St. John\u2019s Wort", "cyp3a4_inducer"),
        ("Adderall XR 20mg", "stimulant"),
        ("lamotrigine ER", "lamotrigine"),
        ("Sertraline", "ssri"),
        ("Xanax\u00ae", "benzodiazepine"),
        ("Lunesta\u2122 3 mg", "z_drug"),
        ("Percocet 5/325", "opioid"),
        ("oxycodone/acetaminophen 5-325 mg tab", "opioid"),
        ("Seroquel? no - Lexapro 10mg", "ssri"),
        ("Levothyroxine sodium 50 mcg", "thyroid_hormone"),
    ],
)
def test_doses_forms_and_punctuation_are_ignored(text: str, drug_class: str) -> None:
    assert classify(text) == drug_class


@pytest.mark.parametrize("text", ["gobbledygook", "", "   ", "10 mg tablet", "®", "St Johns"])
def test_unrecognised_names_are_unknown(text: str) -> None:
    assert classify(text) == "unknown"


@pytest.mark.parametrize(
    "text",
    ["done", "methadon", "premorphine", "xanaxx", "ambiental", "tramadolol", "sertralines"],
)
def test_no_match_inside_a_word(text: str) -> None:
    assert classify(text) == "unknown"


def test_combination_takes_the_most_severe_class() -> None:
    assert classify("bupropion + dextromethorphan") == "nmda_antagonist"
    assert classify("sertraline and alprazolam") == "benzodiazepine"


def test_every_drug_name_row_is_complete_and_round_trips() -> None:
    rows = read_csv("drug_names.csv")
    assert len(rows) > 100
    for row in rows:
        assert row["source"].strip(), row
        assert row["kind"] in {"generic", "brand"}, row
        assert row["name"] == row["name"].strip().lower(), row
        assert classify(row["name"]) == row["drug_class"], row


def test_every_interaction_row_is_complete() -> None:
    rows = read_csv("interactions.csv")
    assert {row["drug_class"]: row["severity"] for row in rows} == SPEC_SEVERITIES
    for row in rows:
        assert row["source"].strip() and row["message"].strip(), row
        assert row["severity"] in set(Severity), row


def test_every_class_has_an_interaction_or_is_listed_as_none() -> None:
    name_classes = {row["drug_class"] for row in read_csv("drug_names.csv")}
    interaction_classes = {row["drug_class"] for row in read_csv("interactions.csv")}
    assert name_classes - interaction_classes == NO_INTERACTION
    assert interaction_classes - name_classes == {"unknown"}
    assert set(drug_classes()) == name_classes | {"unknown"}
    assert drug_classes() == sorted(drug_classes())


def test_taper_classes_match_the_table() -> None:
    severities = {c: interaction_for(c) for c in drug_classes()}
    taper = {c for c, i in severities.items() if i and i.severity is Severity.TAPER_REQUIRED}
    assert taper == TAPER_CLASSES


def test_interaction_for() -> None:
    opioid = interaction_for("opioid")
    assert isinstance(opioid, Interaction)
    assert opioid.severity is Severity.BLOCKING
    assert interaction_for("ssri") is None
    assert interaction_for("nonsense") is None
    unknown = interaction_for("unknown")
    assert unknown is not None and unknown.severity is Severity.CAUTION


def test_screen_empty_is_clear() -> None:
    assert screen([]) == ([], ScreeningResult.CLEAR)


def test_screen_ssri_is_clear() -> None:
    assert screen([med("Zoloft 50mg")]) == ([], ScreeningResult.CLEAR)


def test_screen_ignores_stopped_medications() -> None:
    assert screen([med("oxycodone", status="stopped")]) == ([], ScreeningResult.CLEAR)


def test_screen_benzodiazepine_needs_a_taper_not_a_block() -> None:
    findings, result = screen([med("alprazolam", id=7)])
    assert result is ScreeningResult.CAUTION
    assert findings == [
        {
            "medication_id": 7,
            "medication": "alprazolam",
            "drug_class": "benzodiazepine",
            "severity": "taper_required",
            "message": interaction_for("benzodiazepine").message,  # type: ignore[union-attr]
            "source": interaction_for("benzodiazepine").source,  # type: ignore[union-attr]
        }
    ]


def test_screen_opioid_and_stimulant_is_blocked_in_input_order() -> None:
    meds = [med("Adderall 20mg", id=1), med("sertraline", id=2), med("Norco", id=3)]
    findings, result = screen(meds)
    assert result is ScreeningResult.BLOCKED
    assert [(f["medication_id"], f["severity"]) for f in findings] == [
        (1, "caution"),
        (3, "blocking"),
    ]
    json.dumps(findings)  # stored as JSON on the screening row


def test_screen_unknown_name_is_a_caution() -> None:
    findings, result = screen([med("gobbledygook")])
    assert result is ScreeningResult.CAUTION
    assert [(f["drug_class"], f["severity"]) for f in findings] == [("unknown", "caution")]


@pytest.mark.parametrize(
    ("stored_class", "name", "expected"),
    [("", "oxycodone", "blocked"), ("retired_class", "gobbledygook", "caution")],
)
def test_screen_never_trusts_an_unknown_stored_class(
    stored_class: str, name: str, expected: str
) -> None:
    _, result = screen([Med(id=1, name=name, drug_class=stored_class)])
    assert result == expected


@given(st.text())
def test_classify_never_raises_and_returns_a_known_class(text: str) -> None:
    assert classify(text) in drug_classes()
