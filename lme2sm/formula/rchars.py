"""Which characters R's lexer reads as parts of names, as digits and as blanks.

R (``gram.y``) starts a name with a letter or ``.``, continues it with letters, digits,
``.`` and ``_``, and reads numbers from the ASCII digits only. "Letter" is the C
library's ``iswalpha()`` in a UTF-8 locale, which on Linux holds every Unicode letter,
the letter-like numbers (``Ⅻ``), the combining marks that belong to a script (Devanagari
vowel signs) and the non-ASCII decimal digits: ``x٢`` and even ``٢`` alone are names to
R, never numbers. Between tokens R skips space, tab, form feed and ``iswblank()``
characters (thin and ideographic spaces), not the no-break spaces. The tables come
from R itself (:mod:`lme2sm.formula.rchars_table`, made by ``tools/make_r_chars.R``).

>>> is_name_char("٢"), is_name_start("_"), is_blank("\\u3000"), is_blank("\\u00a0")
(True, False, True, False)
>>> is_syntactic("x٢"), is_syntactic(".2x"), is_syntactic("a b")
(True, False, False)
"""

from __future__ import annotations

import unicodedata
from bisect import bisect_right

from lme2sm.formula.rchars_table import ALPHA_RANGES, BLANK_RANGES


def _ranges(text: str) -> tuple[list[int], list[int]]:
    starts, ends = [], []
    for item in text.split():
        first, last = item.split("-")
        starts.append(int(first, 16))
        ends.append(int(last, 16))
    return starts, ends


_ALPHA = _ranges(ALPHA_RANGES)
_BLANK = _ranges(BLANK_RANGES)


def _in(table: tuple[list[int], list[int]], char: str) -> bool:
    code = ord(char)
    i = bisect_right(table[0], code) - 1
    return i >= 0 and code <= table[1][i]


def is_letter(char: str) -> bool:
    """R's ``iswalpha()``: ASCII letters and the non-ASCII letters of the table."""
    if char.isascii():
        return char.isalpha()
    return _in(_ALPHA, char)


def is_digit(char: str) -> bool:
    """A digit of an R number: the ASCII ``0-9`` only."""
    return "0" <= char <= "9"


def is_name_start(char: str) -> bool:
    """A character that begins a name (``.`` too, unless a digit follows it)."""
    return char == "." or is_letter(char)


def is_name_char(char: str) -> bool:
    """A character that continues a name: letters, ASCII digits, ``.`` and ``_``."""
    return char in "._" or is_digit(char) or is_letter(char)


def is_blank(char: str) -> bool:
    """A character R skips between tokens (newlines are tokens of their own)."""
    if char.isascii():
        return char in " \t\f"
    return _in(_BLANK, char)


def is_syntactic(name: str) -> bool:
    """R's ``isValidName`` without the reserved words: a name R deparses bare."""
    if not name or not is_name_start(name[0]) or name.startswith("_"):
        return False
    if name[0] == "." and len(name) > 1 and is_digit(name[1]):
        return False
    return all(is_name_char(c) for c in name)


def non_ascii_digits(text: str) -> list[str]:
    """The decimal digits in ``text`` that are not ASCII (R reads them as letters)."""
    return [c for c in text if not c.isascii() and unicodedata.category(c) == "Nd"]


def char_label(char: str) -> str:
    """``'²' (U+00B2 SUPERSCRIPT TWO)``: the character, its code point and its name."""
    name = unicodedata.name(char, "")
    shown = repr(char) if char.isprintable() and not char.isspace() else "a character"
    return f"{shown} (U+{ord(char):04X}{' ' + name if name else ''})"
