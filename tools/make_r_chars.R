#!/usr/bin/env Rscript
# R's own character classes for names and blanks -> lme2sm/formula/rchars_table.py.
#
# R's lexer (gram.y) starts a name with iswalpha() or '.', continues it with iswalnum(),
# '.' or '_', and skips ' ', '\t', '\f' and iswblank() characters between tokens. In a
# UTF-8 locale on Linux these are the C library's tables (glibc's "alpha" class holds
# every letter, the non-ASCII decimal digits and the "Other_Alphabetic" combining marks).
# This script reads the classes through R's regex engine (the same wctype functions)
# and checks every blank and a sample of 20000 code points against str2lang() itself.
#
# Run from the project root:  Rscript tools/make_r_chars.R

stopifnot(l10n_info()$`UTF-8`)
cps <- c(0x80:0xD7FF, 0xE000:0x10FFFF)
ch <- intToUtf8(cps, multiple = TRUE)
alpha <- grepl("^[[:alpha:]]$", ch)
blank <- grepl("^[[:blank:]]$", ch)

is_symbol <- function(s) tryCatch({
  e <- str2lang(s)
  is.symbol(e) && identical(as.character(e), s)
}, error = function(e) FALSE)
is_blank <- function(s) tryCatch({
  e <- str2lang(s)
  is.call(e) && identical(e[[2]], as.name("x"))
}, error = function(e) FALSE)
set.seed(20240523)
idx <- unique(c(sample(length(cps), 20000), which(blank), which(alpha)[1:200]))
stopifnot(
  identical(unname(vapply(ch[idx], is_symbol, TRUE)), alpha[idx]),
  identical(unname(vapply(paste0("x", ch[idx]), is_symbol, TRUE)), alpha[idx]),
  identical(unname(vapply(paste0("x", ch[idx], "+z"), is_blank, TRUE)), blank[idx])
)

ranges <- function(mask) {
  r <- rle(mask)
  ends <- cumsum(r$lengths)
  starts <- ends - r$lengths + 1
  keep <- r$values
  # code points are contiguous except at the surrogate gap, where a run never spans
  sprintf("%x-%x", cps[starts[keep]], cps[ends[keep]])
}
wrap <- function(items, width = 88) {
  lines <- character(0)
  line <- ""
  for (it in items) {
    if (nchar(line) + nchar(it) + 1 > width) {
      lines <- c(lines, line)
      line <- ""
    }
    line <- if (line == "") it else paste(line, it)
  }
  c(lines, line)
}
body <- function(name, items) {
  lines <- wrap(items)
  if (length(lines) == 1) return(paste0(name, ' = "', lines, ' "'))
  c(paste0(name, " = ("), paste0('    "', lines, ' "'), ")")
}
out <- c(
  '"""R\'s character classes for names and blanks (generated: do not edit).',
  "",
  paste0("Made by tools/make_r_chars.R with ", R.version.string, ","),
  "in a UTF-8 locale on Linux: the non-ASCII code points iswalpha() and iswblank()",
  "accept, as hex ranges.",
  '"""',
  "",
  body("ALPHA_RANGES", ranges(alpha)),
  "",
  body("BLANK_RANGES", ranges(blank))
)
writeLines(out, "lme2sm/formula/rchars_table.py")
cat(sum(alpha), "alpha and", sum(blank), "blank non-ASCII code points written\n")
