"""R's numeric literals and quoted text, read exactly as R's lexer (``gram.y``) reads them.

Numbers use the ASCII digits only: ``1``, ``1.5``, ``.5``, ``1.``, ``1e3``, ``1E-3``,
``5L``, hexadecimal ``0x10``, ``0xFFL`` and ``0x1.8p1`` (a hexadecimal fraction needs
its ``p`` exponent). ``1e``, ``1e+``, ``0x`` and ``0x1p`` are errors, as in R; ``1i``
(a complex number) is read and then refused, since no model formula can use one.

Strings (``"..."``, ``'...'``) and backticked names take R's escapes: ``\\n``, ``\\t``,
``\\\\``, the quotes, octal ``\\101``, hexadecimal ``\\x41`` and (strings only)
``\\u00e9``/``\\U{1F600}``; an unknown escape or a NUL character is an error.

>>> scan_number("y ~ 0x1.8p1 + x", 4)
11
>>> scan_quoted("`a\\\\x41b` ~ x", 0)
(8, 'aAb')
"""

from __future__ import annotations

from lme2sm.errors import FormulaError
from lme2sm.formula.rchars import is_digit

_HEX = "0123456789abcdefABCDEF"
_SIMPLE_ESCAPES = {
    "a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
    "\\": "\\", '"': '"', "'": "'", "`": "`", " ": " ", "\n": "\n",
}  # fmt: skip


def _malformed(formula: str, start: int, end: int, why: str) -> FormulaError:
    text = formula[start:end]
    return FormulaError(f"{text!r} is not a number R can read: {why}", formula, (start, end))


def scan_number(formula: str, pos: int) -> int:
    """The end of the R number starting at ``pos`` (a digit, or ``.`` and a digit).

    The text up to the end, ``L`` or ``i`` suffix included, is one number token;
    what follows is the next token (R reads ``1..2`` as ``1.`` then ``.2``).
    """
    n = len(formula)
    seendot = formula[pos] == "."
    seenexp = False
    last = formula[pos]
    i = pos + 1
    while i < n and (is_digit(formula[i]) or formula[i] in ".eExXL"):
        c = formula[i]
        if c == "L":
            break
        if c in "xX":
            if i - pos > 1 or last != "0":
                break
            return _hex_end(formula, pos, i + 1)
        if c in "eE":
            if seenexp:
                break
            seenexp = seendot = True
            i += 1
            if i < n and formula[i] in "+-":
                i += 1
            if i >= n or not is_digit(formula[i]):
                raise _malformed(formula, pos, i, "an exponent needs digits, e.g. 1e3 or 1e-3")
            c = formula[i]
        elif c == ".":
            if seendot:
                break
            seendot = True
        last = c
        i += 1
    return _suffix(formula, i)


def _hex_end(formula: str, pos: int, i: int) -> int:
    """The end of a hexadecimal number whose digits start at ``i``."""
    n = len(formula)
    start = i
    while i < n and (formula[i] in _HEX or formula[i] == "."):
        i += 1
    if i == start:
        raise _malformed(formula, pos, i, "0x needs hexadecimal digits, e.g. 0x10")
    if i < n and formula[i] in "pP":
        i += 1
        if i < n and formula[i] in "+-":
            i += 1
        digits = i
        while i < n and is_digit(formula[i]):
            i += 1
        if i == digits:
            raise _malformed(formula, pos, i, "a binary exponent needs digits, e.g. 0x1p4")
    elif "." in formula[start:i]:
        raise _malformed(
            formula, pos, i, "a hexadecimal fraction needs a binary exponent, e.g. 0x1.8p0"
        )
    return _suffix(formula, i)


def _suffix(formula: str, i: int) -> int:
    return i + 1 if i < len(formula) and formula[i] in "Li" else i


def scan_quoted(formula: str, pos: int) -> tuple[int, str]:
    """The end and the value of the string or backticked name starting at ``pos``."""
    quote = formula[pos]
    symbol = quote == "`"
    chars: list[str] = []
    kinds: set[str] = set()
    i = pos + 1
    n = len(formula)
    while i < n and formula[i] != quote:
        if formula[i] != "\\":
            chars.append(formula[i])
            i += 1
            continue
        char, end, kind = _escape(formula, i, symbol)
        kinds.add(kind)
        if char == "\x00":
            raise FormulaError(
                "a NUL character cannot be in a name or string (R refuses it)",
                formula,
                (i, end),
            )
        chars.append(char)
        i = end
    if i >= n:
        what = "backticked name" if symbol else "string"
        raise FormulaError(
            f"unterminated {what}: close it with {quote}", formula, (pos, len(formula))
        )
    if {"unicode", "byte"} <= kinds:
        raise FormulaError(
            "a string cannot mix \\u escapes with octal or \\x escapes (R refuses it)",
            formula,
            (pos, i + 1),
        )
    return i + 1, "".join(chars)


def _escape(formula: str, i: int, symbol: bool) -> tuple[str, int, str]:
    """The character an escape at ``i`` (a backslash) stands for, its end and kind."""
    n = len(formula)
    c = formula[i + 1] if i + 1 < n else ""
    if "0" <= c <= "7":
        end = i + 2
        while end < min(n, i + 4) and "0" <= formula[end] <= "7":
            end += 1
        return _byte(formula, i, end, int(formula[i + 1 : end], 8))
    if c == "x":
        end = _hex_digits(formula, i + 2, 2)
        if end == i + 2:
            raise FormulaError("'\\x' needs hexadecimal digits, e.g. \\x41", formula, (i, end))
        return _byte(formula, i, end, int(formula[i + 2 : end], 16))
    if c in ("u", "U"):
        return _unicode(formula, i, symbol)
    if c in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[c], i + 2, "simple"
    shown = f"'\\{c}'" if c else "a lone backslash"
    raise FormulaError(
        f"{shown} is an unrecognized escape (R refuses it): write \\\\ for a backslash",
        formula,
        (i, i + 2),
    )


def _byte(formula: str, i: int, end: int, value: int) -> tuple[str, int, str]:
    if value >= 0x80:
        raise FormulaError(
            f"the escape {formula[i:end]} is a byte outside ASCII, not a character: "
            "write the character itself (in backticks for a name)",
            formula,
            (i, end),
        )
    return chr(value), end, "byte"


def _hex_digits(formula: str, start: int, most: int) -> int:
    end = start
    while end < min(len(formula), start + most) and formula[end] in _HEX:
        end += 1
    return end


def _unicode(formula: str, i: int, symbol: bool) -> tuple[str, int, str]:
    letter = formula[i + 1]
    if symbol:
        raise FormulaError(
            f"\\{letter} escapes are not allowed inside backticks (R refuses them): "
            "write the character itself",
            formula,
            (i, i + 2),
        )
    braced = i + 2 < len(formula) and formula[i + 2] == "{"
    start = i + 3 if braced else i + 2
    end = _hex_digits(formula, start, 4 if letter == "u" else 8)
    if end == start:
        raise FormulaError(
            f"'\\{letter}' needs hexadecimal digits, e.g. \\u00e9", formula, (i, end)
        )
    value = int(formula[start:end], 16)
    if braced:
        if end >= len(formula) or formula[end] != "}":
            raise FormulaError(f"invalid \\{letter}{{...}} escape", formula, (i, end))
        end += 1
    if value > 0x10FFFF or 0xD800 <= value <= 0xDFFF:
        raise FormulaError(f"{formula[i:end]} is not a Unicode character", formula, (i, end))
    return chr(value), end, "unicode"
