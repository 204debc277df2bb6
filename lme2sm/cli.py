"""The ``lme2sm`` command: fit an lme4 formula to a CSV file, translate one, or run the example.

::

    lme2sm example                          # the bundled schools data, fitted and explained
    lme2sm fit DATA.csv "FORMULA" [--ml] [--json] [--approximate] [--quiet]
    lme2sm translate "FORMULA" [--data DATA.csv] [--approximate]

Errors lme2sm raises on purpose (a malformed formula, a missing column, a term
MixedLM cannot fit) are printed to stderr without a traceback and exit with status 2.
Progress ("fitting ...", the elapsed time, and for a fit longer than 5 s the optimiser's
evaluations and deviance) and warnings go to stderr, results to stdout; ``--quiet``
silences the progress, not the warnings.
Each warning is printed when it is raised, once per text, so the ones raised before an
error (rows dropped, then a one-level grouping factor) come before the error's line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

import pandas as pd

from lme2sm import __version__
from lme2sm.errors import Lme2smError, NotExpressibleError

EXIT_OK = 0
EXIT_ERROR = 2

EXAMPLE_DATA = "schools"
EXAMPLE_FORMULA = "test_score ~ age + sex + (1 | province/school/classroom)"


class CliError(Exception):
    """A problem with the command line's inputs (not lme2sm's): missing file, bad CSV."""


# ------------------------------------------------------------------------------ helpers


def _err(text: str, stream: TextIO | None = None) -> None:
    print(text, file=stream or sys.stderr, flush=True)


def _read_csv(path: str) -> pd.DataFrame:
    """Read a CSV with pandas as R's ``read.csv`` reads it: only ``NA`` and empty cells
    are missing (pandas' defaults also take "None", "null", "NaN", "n/a" for missing,
    which would drop rows lme4 fits: nlme's Alfalfa has a level "None"); any failure
    becomes a CliError with a plain message."""
    try:
        data = pd.read_csv(path, keep_default_na=False, na_values=["NA", ""])
    except FileNotFoundError:
        raise CliError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise CliError(f"{path} is a directory, not a CSV file") from None
    except PermissionError:
        raise CliError(f"cannot read {path}: permission denied") from None
    except pd.errors.EmptyDataError:
        raise CliError(f"{path} is empty: expected a CSV file with a header row") from None
    except OSError as exc:  # a name too long, a device, ...
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:  # the parser's errors, an undecodable byte, a NUL in the path
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CliError(f"cannot read {path} as CSV: {first}") from None
    _check_separator(path, data)
    return data


def _check_separator(path: str, data: pd.DataFrame) -> None:
    """One column whose header holds ``;`` or a tab: a file with another separator
    (R's read.csv2 or a TSV) read as commas; say so instead of 'column missing'."""
    if data.shape[1] != 1:
        return
    header = str(data.columns[0])
    for sep, name in ((";", "semicolons"), ("\t", "tabs")):
        if sep in header:
            raise CliError(
                f"{path} looks separated by {name}, not commas (its one column is "
                f"{header!r}): lme2sm fit reads comma-separated files; convert it first, "
                f"e.g. pandas.read_csv(path, sep={sep!r}).to_csv(new_path, index=False)"
            )


@contextlib.contextmanager
def printing_warnings() -> Iterator[list[str]]:
    """Print every warning to stderr as it is raised, once per distinct text, in order;
    yields the list of texts printed so far (for ``--json``'s ``warnings``).

    Printing at once, not after the call that raised them returns, is what keeps the
    warnings raised before an error: that call never returns.
    """
    texts: list[str] = []

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = str(message)
        if text not in texts:
            texts.append(text)
            _err(f"lme2sm: warning: {text}")

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        yield texts


def _fit(
    formula: str,
    data: pd.DataFrame,
    *,
    reml: bool,
    approximate: bool,
    data_name: str,
    quiet: bool = False,
):
    """lmer with progress lines on stderr unless ``quiet`` (its warnings are printed as
    they come either way)."""
    from lme2sm.models.lmer import lmer

    method = "REML" if reml else "maximum likelihood"
    if not quiet:
        _err(f"lme2sm: fitting {formula} to {len(data)} rows of {data_name} ({method}) ...")
    start = time.perf_counter()
    result = lmer(
        formula,
        data,
        REML=reml,
        approximate=approximate,
        data_name=data_name,
        progress=not quiet,
    )
    seconds = time.perf_counter() - start
    if not quiet:
        _err(f"lme2sm: fitted in {seconds:.1f} s (engine: {result.outcome.engine})")
    return result


def _number(x: Any) -> float | None:
    """A JSON-safe float: NaN and infinities become null."""
    if x is None:
        return None
    try:
        value = float(x)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def _text(x: Any) -> str | None:
    if x is None or (isinstance(x, float) and math.isnan(x)) or x is pd.NA:
        return None
    return str(x)


def result_json(m, data_path: str | None = None, messages: Sequence[str] = ()) -> dict[str, Any]:
    """The fit as a JSON-ready dict (lme4 names throughout)."""
    vc_rows = [
        {
            "grp": _text(row.grp),
            "var1": _text(row.var1),
            "var2": _text(row.var2),
            "vcov": _number(row.vcov),
            "sdcor": _number(row.sdcor),
        }
        for row in m.VarCorr().itertuples(index=False)
    ]
    return {
        "formula": m.formula,
        "data": data_path,
        "REML": bool(m.REML),
        "logLik": _number(m.logLik()),
        "AIC": _number(m.AIC()),
        "BIC": _number(m.BIC()),
        "sigma": _number(m.sigma),
        "nobs": int(m.nobs),
        "fixef": {k: _number(v) for k, v in m.fixef().items()},
        "se": {k: _number(v) for k, v in m.se().items()},
        "varcorr": vc_rows,
        "ngrps": {k: int(v) for k, v in m.ngrps().items()},
        "isSingular": bool(m.isSingular()),
        "warnings": list(messages),
    }


# ------------------------------------------------------------------------ subcommands


def _print_translation(t, out: TextIO) -> None:
    print("# statsmodels code (run it with `data` bound to your pandas DataFrame):", file=out)
    print(t.code(), file=out)
    print("", file=out)
    print("# Why, term by term:", file=out)
    print(t.explain(), file=out)


def cmd_example(args: argparse.Namespace) -> int:
    from lme2sm.datasets import describe, load

    data = load(EXAMPLE_DATA)
    out = sys.stdout
    print(f"lme2sm example: the bundled {EXAMPLE_DATA!r} data ({len(data)} rows)", file=out)
    print(f"  {describe(EXAMPLE_DATA)}", file=out)
    print(
        "  Classroom labels (1-4) repeat in every school, so the nested term "
        "province/school/classroom\n  is what tells classroom 1 of one school from "
        "classroom 1 of another.",
        file=out,
    )
    print(f"  In R: lmer({EXAMPLE_FORMULA}, data = {EXAMPLE_DATA})", file=out)
    print("", file=out)
    m = _fit(EXAMPLE_FORMULA, data, reml=True, approximate=False, data_name=EXAMPLE_DATA)
    print(m.summary(), file=out)
    print("", file=out)
    _print_translation(m.translation, out)
    print("", file=out)
    print(
        'Next: lme2sm fit YOUR.csv "y ~ x + (1 | group)"   or   lme2sm translate "FORMULA"',
        file=out,
    )
    return EXIT_OK


NB_FAMILIES = ("negative_binomial", "nb", "negbin", "negative.binomial")
"""``--family`` names that fit lme4's glmer.nb (:func:`lme2sm.glmer_nb`)."""


def _fit_glmer(args: argparse.Namespace, data: pd.DataFrame, messages: list[str]) -> int:
    """glmer for ``--family`` (glmer_nb for ``negative_binomial``/``nb``): lme4's
    summary(glmer(...)) or JSON."""
    from lme2sm.models.glmer import glmer
    from lme2sm.models.glmer_nb import glmer_nb

    nb = args.family.strip().lower() in NB_FAMILIES
    if nb:
        m = glmer_nb(
            args.formula,
            data,
            weights=args.weights,
            nAGQ=args.nAGQ,
            data_name=args.data,
            progress=not args.quiet,
        )
    else:
        m = glmer(
            args.formula,
            data,
            args.family,
            weights=args.weights,
            nAGQ=args.nAGQ,
            data_name=args.data,
            progress=not args.quiet,
        )
    if args.json:
        tab = m.coef_table()
        out = {
            "formula": m.formula,
            "family": m.family.name,
            "link": m.family.link_name,
            "nAGQ": m.nAGQ,
            "nobs": m.nobs(),
            "logLik": m.logLik(),
            "AIC": m.AIC(),
            "BIC": m.BIC(),
            "deviance": m.deviance(),
            "fixef": m.fixef().to_dict(),
            "se": tab["Std. Error"].to_dict(),
            "pvalue": tab["Pr(>|z|)"].to_dict(),
            "varcorr": m.VarCorr().to_dict(orient="records"),
            "warnings": list(messages),
        }
        if nb:
            out["nb_theta"] = m.nb_theta
        json.dump(out, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(m.summary())
    return EXIT_OK


def cmd_fit(args: argparse.Namespace) -> int:
    messages = getattr(args, "warnings_printed", [])
    data = _read_csv(args.data)
    if args.family is not None:
        return _fit_glmer(args, data, messages)
    if args.weights is not None or args.nAGQ != 1:
        raise CliError("--weights and --nAGQ go with --family (a glmer fit)")
    m = _fit(
        args.formula,
        data,
        reml=not args.ml,
        approximate=args.approximate,
        data_name=args.data,
        quiet=args.quiet,
    )
    if args.json:
        json.dump(result_json(m, args.data, messages), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(m.summary())
    return EXIT_OK


def cmd_translate(args: argparse.Namespace) -> int:
    from lme2sm.faces.placeholder_data import placeholder_translation
    from lme2sm.faces.translation import translate

    if args.data is not None:
        data = _read_csv(args.data)
        t = translate(args.formula, data, approximate=args.approximate)
        _print_translation(t, sys.stdout)
        return EXIT_OK
    t, assumed = placeholder_translation(args.formula, args.approximate)
    for line in "\n".join(assumed).splitlines():
        indent = " " * (len(line) - len(line.lstrip()))
        indent += "  " if line.lstrip().startswith("- ") else ""
        for piece in textwrap.wrap(line, width=88, subsequent_indent=indent) or [""]:
            print(f"# {piece}")
    print("")
    _print_translation(t, sys.stdout)
    return EXIT_OK


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lme2sm",
        description=(
            "Fit R lme4 mixed-model formulas with statsmodels MixedLM, "
            "with lme4's names and numbers."
        ),
        epilog='Example: lme2sm fit sleepstudy.csv "Reaction ~ Days + (Days | Subject)"',
    )
    parser.add_argument("--version", action="version", version=f"lme2sm {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser(
        "example",
        help="fit the bundled schools data and show the statsmodels code it became",
        description=(
            f"Fit {EXAMPLE_FORMULA!r} to the bundled schools data; print the lme4-style "
            "summary, the statsmodels code the formula became, and why."
        ),
    )
    p.set_defaults(func=cmd_example)

    p = sub.add_parser(
        "fit",
        help="fit an lme4 formula to a CSV file",
        description=(
            "Read DATA (a CSV file with a header row) and fit FORMULA by REML (or --ml). "
            "Grouping columns may hold numbers: they are treated as categories."
        ),
    )
    p.add_argument("data", metavar="DATA.csv", help="CSV file with a header row")
    p.add_argument("formula", metavar="FORMULA", help='e.g. "y ~ x + (x | group)" (quote it)')
    p.add_argument("--ml", action="store_true", help="maximum likelihood instead of REML")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument(
        "--family",
        default=None,
        help="fit a glmer: binomial, poisson, \"binomial(link='probit')\", negative_binomial "
        "(lme4's glmer.nb; also nb) (default: lmer)",
    )
    p.add_argument("--weights", metavar="COL", default=None, help="prior weights column (glmer)")
    p.add_argument(
        "--nAGQ", type=int, default=1, help="glmer: 1 Laplace (default), >1 Gauss-Hermite nodes"
    )
    p.add_argument(
        "--approximate",
        action="store_true",
        help="fit the nearest expressible model when a term cannot be expressed (with a warning)",
    )
    p.add_argument(
        "--quiet",
        action="store_true",
        help="no progress lines on stderr (warnings and errors are still printed)",
    )
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser(
        "translate",
        help="show the statsmodels code for an lme4 formula, and why",
        description=(
            "Print the statsmodels MixedLM code FORMULA becomes and a term-by-term "
            "explanation. Without --data, a placeholder data frame is used and the "
            "assumptions are printed."
        ),
    )
    p.add_argument("formula", metavar="FORMULA")
    p.add_argument("--data", metavar="DATA.csv", help="CSV file: translate for these data")
    p.add_argument(
        "--approximate",
        action="store_true",
        help="split terms MixedLM cannot express into uncorrelated ones (with a warning)",
    )
    p.set_defaults(func=cmd_translate)
    return parser


def _error_text(exc: Lme2smError) -> str:
    text = f"lme2sm: error ({type(exc).__name__}): {exc}"
    if isinstance(exc, NotExpressibleError):
        text += (
            "\nWrite the nearest model in your formula, or add --approximate to fit it "
            "with those correlations dropped (a warning says which)."
        )
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 success, 2 error)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        _err("lme2sm: error: a command is needed: example, fit or translate")
        return EXIT_ERROR
    try:
        with printing_warnings() as printed:
            args.warnings_printed = printed
            return args.func(args)
    except Lme2smError as exc:
        _err(_error_text(exc))
    except CliError as exc:
        _err(f"lme2sm: error: {exc}")
    except KeyboardInterrupt:
        _err("lme2sm: interrupted")
        return 130
    except BrokenPipeError:  # e.g. `lme2sm translate ... | head`: stop quietly
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    return EXIT_ERROR


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
