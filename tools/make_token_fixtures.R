#!/usr/bin/env Rscript
# R's own reading of hostile formula text -> tests/fixtures/r_tokens.json.
#
# Every case is parsed as R parses a formula written as text (str2lang's rules: one
# expression). For each: either R's tokens (getParseData: type, text, columns, and for
# names and strings their value) or R's error (message and, when R gives one, the
# 1-based column it points at). Cases: look-alike and non-ASCII characters (digits of
# other scripts, superscripts, Unicode minus, no-break and zero-width spaces, fancy
# quotes, combining marks, ...) in every place a formula can hold them (names, numbers,
# I(), backticks, grouping terms, between tokens), R's number formats, escapes in
# backticks and strings, comments, line breaks and semicolons.
#
# Run from the project root (in a UTF-8 locale):  Rscript tools/make_token_fixtures.R

library(jsonlite)
stopifnot(l10n_info()$`UTF-8`)

chars <- c(
  "\u0662", "\u0968", "\uff12", "\u00b2", "\u2070", "\u2212", "\u2013", "\u00a0", "\u202f",
  "\u200b", "\u200d", "\ufeff", "\u2009", "\u3000", "\u201c", "\u2019", "\u0301", "\u093f",
  "\u216b", "\u2460", "\u00bd", "\uff0b", "\uff5e", "\u00d7", "\u0085", "\u2028", "\r",
  "\v", "\t", "\f", "\u00e9", "\u00b5", "\u00aa", "\u05d0", "\u4e2d", "\U0001d465",
  "\U0001F600", "_", ".", "$", "\\", "?", "!", "@"
)
contexts <- c(
  "y ~ x%s", "y ~ %s", "y ~ %sx", "y ~ x + 1%s", "y ~ x + .5%s", "y ~ I(x^%s) + (1 | g)",
  "y ~ I(x^2%s) + (1 | g)", "y ~ `x%s` + (1 | g)", "y ~ x + (1 | g%s)", "y ~ x + (1 | %s)",
  "y ~ x%s+ z", "y ~ x + (1%s| g)", "y%s ~ x", "y ~ Q('x%s')"
)
cases <- as.vector(outer(contexts, chars, function(f, c) mapply(sprintf, f, c)))
cases <- c(cases,
  # numbers
  "y ~ 1", "y ~ 1.5", "y ~ .5", "y ~ 1.", "y ~ 1e3", "y ~ 1E-3", "y ~ 1e+3", "y ~ 5L",
  "y ~ 0x10", "y ~ 0XfF", "y ~ 0xFFL", "y ~ 0x1p4", "y ~ 0x1.8p1", "y ~ 0x.8p1",
  "y ~ 0x1P-2", "y ~ 1.5L", "y ~ 1e5L", "y ~ 1e-3L", "y ~ 1i", "y ~ 2.5i", "y ~ 0x10i",
  "y ~ 1e", "y ~ 1e+", "y ~ 1.5e", "y ~ 0x", "y ~ 0xg", "y ~ 0x1p", "y ~ 0x1.8",
  "y ~ 1..2", "y ~ 1.2.3", "y ~ 1e5.5", "y ~ 1LL", "y ~ 1L2", "y ~ 00x1", "y ~ 1x",
  "y ~ 1_0", "y ~ .2x", "y ~ ..2", "y ~ .x2", "y ~ ._", "y ~ _x", "y ~ x_", "y ~ x..",
  "y ~ I(x * 1e-3) + (1 | g)", "y ~ I(x^0x2) + (1 | g)", "y ~ poly(x, 2L) + (1 | g)",
  # escapes
  "y ~ `a\\`b`", "y ~ `a\\nb`", "y ~ `a\\tb`", "y ~ `a\\qb`", "y ~ `a\\x41b`",
  "y ~ `a\\101b`", "y ~ `a\\u00e9`", "y ~ `a\\\\b`", "y ~ `a\\\"b`", "y ~ `a\\ b`",
  "y ~ `a\nb`", "y ~ `a b`", "y ~ `1x` + (1 | `my g`)", "y ~ `\\0`", "y ~ `a\\x`",
  "y ~ Q('a\\u00e9b')", "y ~ Q('a\\u{e9}b')", "y ~ Q('a\\qb')", "y ~ Q('a\\x41\\u00e9')",
  "y ~ Q(\"it's\")", "y ~ Q('a\nb')",
  # comments, line breaks, semicolons
  "y ~ x # comment", "y ~ x # c\n", "y ~ x # c\n + z", "y ~ x + # c\n z", "y ~ x\n+ z",
  "y ~ x +\n z", "\ny ~ x", "y ~ x\n", "y ~ (x\n+ z)", "y\n~ x", "y ~\n x",
  "y ~ x + (1 |\n g)", "y ~ I(x\n+ 1)", "y ~ x;", "y ~ x; z", "y ~ x;;", "y ~ -\nx",
  "y ~ x + (1 | g)\n# end"
)
cases <- unique(cases)

tokens_of <- function(s) {
  p <- parse(text = s, keep.source = TRUE)
  if (length(p) != 1) stop(sprintf("parsing result not of length one, but %d", length(p)))
  d <- getParseData(p)
  d <- d[d$terminal & d$token != "COMMENT", ]
  d <- d[order(d$line1, d$col1), ]
  lapply(seq_len(nrow(d)), function(i) {
    token <- d$token[i]
    text <- d$text[i]
    value <- if (token %in% c("SYMBOL", "SYMBOL_FUNCTION_CALL", "SYMBOL_SUB")) {
      as.character(str2lang(text))
    } else if (token == "STR_CONST") {
      eval(str2lang(text))
    } else {
      text
    }
    list(token = token, text = text, value = value, line = d$line1[i],
         col1 = d$col1[i], col2 = d$col2[i])
  })
}

read_case <- function(s) {
  out <- tryCatch(
    withCallingHandlers(
      list(formula = s, ok = TRUE, tokens = tokens_of(s)),
      warning = function(w) invokeRestart("muffleWarning")
    ),
    error = function(e) {
      msg <- conditionMessage(e)
      where <- regmatches(msg, regexec("^<text>:([0-9]+):([0-9]+): ([^\n]*)", msg))[[1]]
      if (length(where)) {
        list(formula = s, ok = FALSE, message = where[4],
             line = as.integer(where[2]), column = as.integer(where[3]))
      } else {
        list(formula = s, ok = FALSE, message = msg)
      }
    }
  )
  out
}

out <- list(r_version = R.version.string, cases = lapply(cases, read_case))
path <- "tests/fixtures/r_tokens.json"
writeLines(toJSON(out, auto_unbox = TRUE, pretty = TRUE), path)
cat(length(cases), "cases written to", path, "\n")
