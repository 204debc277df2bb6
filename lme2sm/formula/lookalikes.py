"""What to write instead of a character R refuses in a formula.

Formulas pasted from word processors, web pages and PDFs carry characters that look
like R's but are not: typographic minus signs and quotes, no-break and zero-width
spaces, superscript digits, full-width operators, combining accents. R stops at them
with "unexpected input"; lme2sm names the character and says what to type.

>>> advice("\\u2212")
"'−' (U+2212 MINUS SIGN) is not R's minus: write -"
>>> advice("\\u200b")
'a character (U+200B ZERO WIDTH SPACE) is invisible: delete it'
"""

from __future__ import annotations

import unicodedata

from lme2sm.formula.rchars import char_label

_SAME_AS = {
    "-": "\u2212\u2010\u2011\u2012\u2013\u2014\u2015\ufe58\ufe63\uff0d",
    "'": "\u2018\u2019\u201a\u201b\u2032\u00b4\uff07",
    '"': "\u201c\u201d\u201e\u201f\u2033\u00ab\u00bb\uff02",
    "*": "\u00d7\u2217\u22c5\u2062\uff0a",
    "/": "\u00f7\u2215\u2044\uff0f",
    "~": "\u223c\u02dc\u301c\uff5e",
    "|": "\u2223\u01c0\uff5c\u2502",
    ":": "\u2236\uff1a\u00b7",
    "+": "\uff0b\u2795",
    "(": "\uff08",
    ")": "\uff09",
    ",": "\uff0c\u3001",
    "^": "\u02c6\uff3e",
}
_LOOKS_LIKE = {char: ascii_char for ascii_char, chars in _SAME_AS.items() for char in chars}
_NO_BREAK = "\u00a0\u2007\u202f"
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u200e\u200f"


def advice(char: str) -> str:
    """One sentence: what ``char`` is and what to write instead."""
    label = char_label(char)
    if char in _LOOKS_LIKE:
        what = {"-": "minus", "'": "quote", '"': "quote"}.get(_LOOKS_LIKE[char], "operator")
        return f"{label} is not R's {what}: write {_LOOKS_LIKE[char]}"
    if char in _NO_BREAK:
        return f"{label} is a no-break space, which R does not skip: write an ordinary space"
    if char in _INVISIBLE:
        return f"{label} is invisible: delete it"
    if char in "\r\v\x85\u2028\u2029":
        return f"{label} is a line break R does not read: end lines with \\n only"
    if char == "\x00":
        return "a NUL character cannot be in a formula (R cannot read one): delete it"
    if 0xD800 <= ord(char) <= 0xDFFF:
        return f"{label} is half of a UTF-16 pair, not a character: the text is corrupt"
    category = unicodedata.category(char)
    folded = unicodedata.normalize("NFKC", char)
    if char in "\u00b2\u00b3\u00b9" or "\u2070" <= char <= "\u209f":
        return f"{label} is a superscript or subscript: write ^{folded} for a power"
    if category.startswith("M"):
        return (
            f"{label} is a combining mark R does not accept in a name: type the accented "
            "letter as one character (NFC form), or write the name in backticks"
        )
    if category == "Cc":
        return f"{label} is a control character: delete it"
    if folded.isascii() and folded != char and folded.strip():
        return f"{label} looks like {folded!r} but is not: write {folded}"
    if category == "No":
        return f"{label} is not a digit R reads: numbers use 0-9"
    return f"{label} cannot appear in a formula outside backticks"
