#!/usr/bin/env Rscript
# lme4's own reading of a list of formulas -> tests/fixtures/parse_lme4.json.
#
# For every formula: the random terms as lme4's findbars(expandDoubleVerts(rhs))
# gives them (text, group, intercept and term labels of each bar's left-hand side),
# and the fixed part as lFormula builds it (rhs replaced by nobars(rhs)): its text,
# term labels, intercept and offsets. Works with lme4 < 1.1-36 (functions in lme4)
# and newer lme4 (functions in the reformulas package).
#
# Run from the project root:  Rscript tools/parse_fixtures.R

suppressMessages(library(lme4))
ns <- if (requireNamespace("reformulas", quietly = TRUE)) "reformulas" else "lme4"
get_fn <- function(name) getExportedValue(ns, name)
findbars <- get_fn("findbars")
nobars <- get_fn("nobars")
expandDoubleVerts <- if (ns == "lme4") lme4:::expandDoubleVerts else get_fn("expandDoubleVerts")

formulas <- c(
  "Reaction ~ Days + (Days | Subject)",
  "Reaction ~ Days + (Days || Subject)",
  "y ~ x + (1 | g)",
  "y ~ x + (x | g)",
  "y ~ x + (1 + x | g)",
  "y ~ x + (0 + x | g)",
  "y ~ x + (-1 + x | g)",
  "y ~ x + (x - 1 | g)",
  "y ~ (x || g)",
  "y ~ (0 + x || g)",
  "y ~ (x - 1 || g)",
  "y ~ (x + z || g)",
  "y ~ (x * z || g)",
  "y ~ (x * z | g)",
  "y ~ (factor(f) || g)",
  "y ~ (1 + factor(f) | g)",
  "y ~ (1 | a/b)",
  "y ~ (1 | a/b/c)",
  "y ~ (x || a/b)",
  "y ~ (x + z || g/h)",
  "y ~ (1 | a:b)",
  "y ~ (1 | a/b:c)",
  "y ~ ((1 | g))",
  "y ~ (1 | g) + (1 | g)",
  "y ~ (1 | g) + x",
  "y ~ x + (1 | g) + z",
  "y ~ x * z + (1 | g) + z",
  "y ~ 0 + x + (1 | g)",
  "y ~ x - 1 + (1 | g)",
  "y ~ -1 + x + (1 | g)",
  "y ~ 0 + (1 | g)",
  "y ~ -1 + (1 | g)",
  "y ~ 1 + (1 | g)",
  "y ~ (1 | g)",
  "y ~ x",
  "y ~ 1",
  "y ~ 0 + x",
  "y ~ (a + b + c)^2 + (1 | g)",
  "y ~ (a + b + c)^3 - a:b:c",
  "y ~ a/b + (1 | g)",
  "y ~ a/b/c",
  "y ~ (a + b)/c",
  "y ~ a %in% b",
  "y ~ b:a + a + (1 | g)",
  "y ~ a*b - a",
  "y ~ x + x + x:z + z:x",
  "y ~ factor(cyl) + I(x^2) + (1 | g)",
  "y ~ log(x) + exp(z) + sqrt(w) + scale(v) + (log(x) | g)",
  "log(y) ~ x + (1 | g)",
  "y ~ x + offset(o) + (1 | g)",
  "y ~ x + offset(log(w)) + offset(o)",
  "y ~ I(x^2) + I(x/100000) + I(2 * x) + (I(x^2) | g)",
  "y ~ I((x + 1)^2) + I(-x^2)",
  "Sepal.Length ~ Sepal.Width + (1 | Species)",
  "yield ~ class + (1 | block/plot)",
  "`my y` ~ `my var` + (`my var` | `my group`)",
  "y ~ x + (x | g) + (1 | h)",
  "y ~ x + (1 | g) + (0 + x | g)",
  "y ~ (1 | school/class) + (1 | rater)",
  "y ~ (1 | g:h) + (1 | g)",
  "y ~ recipe * temp + (1 | replicate/recipe)",
  "y ~ (x | g/h/k)",
  "y ~ x + (1 | (g))",
  "y ~ (x + (1 | g))",
  "y ~ x:z + z:x:w + (z:x | g)",
  "y ~ (a + b)*(c + d) + (1 | g)",
  "y ~ a + b %in% a + (1 | g)",
  "y ~ x + 1 - 1 + 1",
  "y ~ x + (1 | g) - 1",
  "y ~ (1 | g) - 1",
  "y ~ 0 + x + (x || g) + (1 | h/k)"
)

lhs_info <- function(lhs) {
  tt <- terms(eval(substitute(~foo, list(foo = lhs))))
  list(effects = as.list(attr(tt, "term.labels")), intercept = attr(tt, "intercept") == 1)
}

one <- function(text) {
  f <- as.formula(text)
  rhs <- f[[3]]
  bars <- findbars(expandDoubleVerts(rhs))
  random <- lapply(bars, function(b) {
    c(list(text = deparse1(b), lhs = deparse1(b[[2]], backtick = TRUE), group = deparse1(b[[3]])), lhs_info(b[[2]]))
  })
  fixed <- f
  fixed[[3]] <- nobars(rhs)
  tt <- terms(fixed)
  offsets <- attr(tt, "offset")
  vars <- vapply(as.list(attr(tt, "variables"))[-1], deparse1, "")
  list(
    formula = text,
    response = deparse1(f[[2]], backtick = TRUE),
    fixed = deparse1(fixed),
    fixed_labels = as.list(attr(tt, "term.labels")),
    fixed_intercept = attr(tt, "intercept") == 1,
    offsets = as.list(if (is.null(offsets)) character() else sub("^offset\\((.*)\\)$", "\\1", vars[offsets])),
    random = random
  )
}

out <- list(
  generator = "tools/parse_fixtures.R",
  lme4_version = as.character(packageVersion("lme4")),
  functions_from = ns,
  cases = lapply(formulas, one)
)
path <- file.path("tests", "fixtures", "parse_lme4.json")
writeLines(jsonlite::toJSON(out, auto_unbox = TRUE, pretty = TRUE), path)
cat("wrote", length(formulas), "formulas to", path, "\n")
