"""Text folding for drug names: what a name means, not how it was typed.

NFKD splits accented and compatibility characters (full-width letters, ligatures,
mathematical letters) into plain letters plus marks; format characters (zero-width
space, soft hyphen, joiners) and combining marks are then dropped, case is folded,
and anything that is not a letter or digit separates words.
"""

from __future__ import annotations

import re
import unicodedata

# Dropped before NFKD, which would turn the trade mark sign into the letters "TM".
_MARKS = dict.fromkeys(map(ord, "\u00ae\u2122\u2120"), " ")
# Apostrophes join rather than split, so "St John's" and "St Johns" fold alike.
_APOSTROPHES = re.compile(r"['\u2018\u2019\u02bc\u02b9`\u00b4]")
_SEPARATORS = re.compile(r"[\W_]+")
_DROPPED = frozenset({"Cf", "Mn", "Mc", "Me"})


def fold(text: str) -> str:
    """NFKD, without format characters and combining marks, case-folded."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_MARKS))
    kept = "".join(ch for ch in decomposed if unicodedata.category(ch) not in _DROPPED)
    # Case folding can itself produce decomposable characters ("İ"): fold again.
    folded = unicodedata.normalize("NFKD", kept.casefold())
    return "".join(ch for ch in folded if unicodedata.category(ch) not in _DROPPED)


def tokens(text: str) -> list[str]:
    """The words of a name, folded; punctuation and spaces only separate them."""
    return _SEPARATORS.sub(" ", _APOSTROPHES.sub("", fold(text))).split()


def compact(words: list[str] | tuple[str, ...]) -> str:
    """The words run together: "oxy-codone" and "oxycodone" compact alike."""
    return "".join(words)


def scripts(text: str) -> set[str]:
    """The writing systems of the letters in ``text`` (LATIN, CYRILLIC, GREEK, ...)."""
    found = set()
    for ch in text:
        if ch.isalpha():
            name = unicodedata.name(ch, "")
            found.add(name.split(" ", 1)[0] if name else "UNNAMED")
    return found


def within(a: str, b: str, limit: int) -> bool:
    """Whether the Damerau-Levenshtein (optimal string alignment) distance is <= limit."""
    if abs(len(a) - len(b)) > limit:
        return False
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1] <= limit
