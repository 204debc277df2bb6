"""The exception tree: one root error, subclasses that carry where the problem is.

Every user-facing failure in lme2sm is one of these. Errors about formula text keep
the formula and a half-open ``(start, end)`` span into it, and draw the caret line
only when printed, so programs can read ``.message`` and ``.span`` directly.
"""

from __future__ import annotations

import unicodedata


class Lme2smError(Exception):
    """Root of every error lme2sm raises on purpose."""


class FormulaError(Lme2smError, ValueError):
    """The formula text is malformed or uses something lme2sm does not accept.

    Parameters
    ----------
    message : str
        What is wrong and what to write instead.
    formula : str, optional
        The formula text the span points into.
    span : tuple of int, optional
        Half-open ``(start, end)`` character positions of the offending text.
    """

    def __init__(
        self, message: str, formula: str | None = None, span: tuple[int, int] | None = None
    ):
        self.message = message
        self.formula = formula
        self.span = span
        super().__init__(message)

    def __str__(self) -> str:
        if self.formula is None or self.span is None:
            return self.message
        start, end = self.span
        start = max(0, min(start, len(self.formula)))
        end = max(start + 1, min(end, len(self.formula) + 1))
        shown, caret = [], []
        for i, char in enumerate(self.formula + " "):
            text, width = _display(char, start <= i < end)
            shown.append(text)
            caret.append(("^" if start <= i < end else " ") * max(width, start <= i < end))
        return f"{self.message}\n    {''.join(shown).rstrip()}\n    {''.join(caret).rstrip()}"


def _display(char: str, marked: bool) -> tuple[str, int]:
    """How one formula character is shown above the caret line, and its width there.

    Line breaks, tabs, control and invisible characters are shown escaped (a caret under
    an invisible character would point at nothing); wide East Asian characters take two
    columns, combining marks none (unless the caret points at one).
    """
    if char == "\n":
        return "\\n", 2
    if char == "\t":
        return "\\t", 2
    category = unicodedata.category(char)
    if category in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp") or (char.isspace() and char != " "):
        text = f"<U+{ord(char):04X}>"
        return text, len(text)
    if category in ("Mn", "Me", "Mc"):
        if marked:
            text = f"<U+{ord(char):04X}>"
            return text, len(text)
        return char, 0
    return char, 2 if unicodedata.east_asian_width(char) in "WF" else 1


class NotExpressibleError(Lme2smError, ValueError):
    """A random-effects term that statsmodels MixedLM cannot represent.

    Carries the lme4 ``term`` text, the one-sentence ``reason`` and the nearest
    formula MixedLM can fit (``suggestion``); ``model`` names another statsmodels
    class the translation is for (glmer's ``BinomialBayesMixedGLM``).
    """

    def __init__(
        self, term: str, reason: str, suggestion: str | None = None, model: str = "MixedLM"
    ):
        self.term = term
        self.reason = reason
        self.suggestion = suggestion
        text = f"statsmodels {model} cannot fit the term ({term}): {reason}"
        if suggestion:
            text += f"\nThe nearest model {model} can fit: {suggestion}"
        super().__init__(text)


class DataError(Lme2smError, ValueError):
    """The data do not fit the formula: a missing column, a bad column type, ..."""


class RowsNotInMemoryError(DataError):
    """Something needs the rows themselves, which a fit on data beyond memory keeps outside."""


class ArgumentError(Lme2smError, ValueError):
    """Arguments that contradict the formula or each other (e.g. ``groups=`` with lme4 terms)."""


class FitError(Lme2smError, RuntimeError):
    """The optimiser could not produce a usable fit."""


class Lme2smWarning(UserWarning):
    """Root of lme2sm's warnings (dropped rows, convergence, singular fits)."""


class ConvergenceWarning(Lme2smWarning):
    """The optimum is doubtful: large gradient, or optimisers disagree."""


class SingularFitWarning(Lme2smWarning):
    """A variance estimate is at zero or a correlation at +-1 ("boundary (singular) fit")."""


class DroppedRowsWarning(Lme2smWarning):
    """Rows with missing values in the formula's variables were dropped."""


class ApproximationWarning(Lme2smWarning):
    """The caller opted in to fitting the nearest expressible model instead of theirs."""


class RankDeficiencyWarning(Lme2smWarning):
    """Aliased fixed-effect columns were dropped, as lme4 drops them."""
