"""Drug knowledge: the drug table, the name matcher and the interaction screen (SPEC.md 4.3).

The clinical content is data with a source and a basis on every row, in
``workflow/data/drug_names.csv`` and ``workflow/data/interactions.csv`` (or the
directory of the setting ``drug_table_dir``).
"""

from workflow.drugs.matcher import Classification, classify, classify_name, most_severe
from workflow.drugs.screening import (
    MedicationLike,
    ScreeningResult,
    blocking_classes,
    class_of,
    classes_of,
    drug_classes,
    interaction_for,
    screen,
    washout_days,
)
from workflow.drugs.table import (
    UNKNOWN,
    DrugTable,
    Interaction,
    Severity,
    current_table,
    load_table,
    parse,
)

TAPER_CLASSES = frozenset({"benzodiazepine", "z_drug"})

__all__ = [
    "TAPER_CLASSES",
    "UNKNOWN",
    "Classification",
    "DrugTable",
    "Interaction",
    "MedicationLike",
    "ScreeningResult",
    "Severity",
    "blocking_classes",
    "class_of",
    "classes_of",
    "classify",
    "classify_name",
    "current_table",
    "drug_classes",
    "interaction_for",
    "load_table",
    "most_severe",
    "parse",
    "screen",
    "washout_days",
]
