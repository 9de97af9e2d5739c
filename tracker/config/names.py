"""A source's name as people see it: what two names that print the same have in common.

Names are shown in the digest, in Discord and in every command's output, and used to pick
a source (``--source``, ``/sources remove``). Two names that print the same are one name to
a reader, so ``fast5``, ``fаst5`` (a Cyrillic а) and ``fast5`` with a zero-width space
must not be three sources. Format characters (Unicode category Cf: zero-width spaces and
joiners, direction overrides) are dropped from a name; names are compared by a skeleton in
the manner of Unicode TS #39: NFKC, case folded, and each letter that looks like a Latin
one in common fonts mapped to it. The table below is the part of TS #39's confusables that
Latin-looking Cyrillic and Greek letters make, not all of it; a name in any script stays
welcome, only a collision with another name is refused.
"""

from __future__ import annotations

import unicodedata

#: Cyrillic and Greek letters drawn like Latin ones (lower case: skeletons are case folded).
_LOOK_ALIKES = {
    # Cyrillic
    "а": "a", "в": "b", "е": "e", "ё": "e", "һ": "h", "і": "i", "ї": "i", "ј": "j",
    "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "с": "c", "т": "t", "у": "y",
    "х": "x", "ѕ": "s", "ԁ": "d", "ԛ": "q", "ԝ": "w", "ӏ": "l", "ү": "y", "ɡ": "g",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o",
    "ρ": "p", "τ": "t", "υ": "u", "χ": "x", "ω": "w", "ϲ": "c", "ϳ": "j",
    # Latin look-alikes of digits, and digits of other scripts are NFKC's already
    "ı": "i", "ℓ": "l",
}  # fmt: skip
_TABLE = str.maketrans(_LOOK_ALIKES)


def visible(name: str) -> str:
    """The name without format characters (zero-width spaces, direction overrides) and
    surrounding blanks, in NFC: what a reader sees of it."""
    kept = "".join(c for c in name if unicodedata.category(c) != "Cf")
    return unicodedata.normalize("NFC", kept).strip()


def skeleton(name: str) -> str:
    """What ``name`` looks like, for comparing: equal skeletons print alike."""
    folded = unicodedata.normalize("NFKC", visible(name)).casefold()
    return unicodedata.normalize("NFKC", folded.translate(_TABLE))
