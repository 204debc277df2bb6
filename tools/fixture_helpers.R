# fixture_helpers.R -- small helpers shared by tools/make_glmer_fixtures.R and
# tools/make_kr_fixtures.R (sourced; not a script). tools/make_fixtures.R keeps its own
# copies of the same helpers.

suppressPackageStartupMessages(library(jsonlite))

invisible(Sys.setlocale("LC_COLLATE", "C"))
options(width = 80, digits = 7, warn = 1)

if (!file.exists("tools/fixture_helpers.R")) stop("run from the project root")

# drop groupedData/ordered classes: factors -> character, other attributes dropped
plain <- function(df) {
  df <- as.data.frame(df, stringsAsFactors = FALSE)
  class(df) <- "data.frame"
  for (col in names(df)) {
    x <- df[[col]]
    if (is.factor(x)) df[[col]] <- as.character(x)
    attributes(df[[col]]) <- NULL
  }
  df
}

# Write a CSV as the bundled datasets are written (quoted strings, "\n", NA as an empty cell).
write_csv_data <- function(df, path) {
  dir.create(dirname(path), showWarnings = FALSE, recursive = TRUE)
  write.csv(df, path, row.names = FALSE, quote = TRUE, eol = "\n", na = "")
}

# Read a CSV back: the factor columns as factors with levels sorted in the C locale
# (as Python sorts strings), empty cells and "NA" as missing.
read_csv_data <- function(path, factors) {
  hdr <- names(read.csv(path, nrows = 1, check.names = FALSE))
  cc <- setNames(rep(NA_character_, length(hdr)), hdr)
  cc[factors] <- "character"
  df <- read.csv(path, colClasses = cc, check.names = FALSE, stringsAsFactors = FALSE,
                 na.strings = c("", "NA"))
  for (col in factors) df[[col]] <- factor(df[[col]], levels = sort(unique(df[[col]])))
  df
}

named_list <- function(x) { out <- as.list(unname(as.numeric(x))); names(out) <- names(x); out }
rows_of <- function(m) lapply(seq_len(nrow(m)), function(i) I(unname(as.numeric(m[i, ]))))
head_num <- function(x, n = 20) I(unname(as.numeric(head(x, n))))

# Evaluate expr, collecting (and muffling) its messages and warnings.
capture <- function(expr) {
  msgs <- character(); warns <- character()
  value <- withCallingHandlers(expr,
    message = function(c) { msgs <<- c(msgs, trimws(conditionMessage(c))); invokeRestart("muffleMessage") },
    warning = function(c) { warns <<- c(warns, conditionMessage(c)); invokeRestart("muffleWarning") })
  list(value = value, messages = msgs, warnings = warns)
}

ranef_json <- function(m) {
  re <- lme4::ranef(m)
  out <- lapply(names(re), function(g) {
    d <- re[[g]]
    list(levels = I(rownames(d)), columns = I(colnames(d)), values = rows_of(as.matrix(d)))
  })
  names(out) <- names(re)
  out
}

varcorr_json <- function(m) {
  vc <- as.data.frame(lme4::VarCorr(m))
  lapply(seq_len(nrow(vc)), function(i) list(
    grp = vc$grp[i],
    var1 = if (is.na(vc$var1[i])) NULL else vc$var1[i],
    var2 = if (is.na(vc$var2[i])) NULL else vc$var2[i],
    vcov = vc$vcov[i], sdcor = vc$sdcor[i]))
}

optimizer_json <- function(m) {
  oi <- m@optinfo
  list(optimizer = oi$optimizer, control = oi$control, feval = oi$feval,
       conv_opt = oi$conv$opt, lme4_messages = I(as.character(unlist(oi$conv$lme4$messages))),
       optimizer_warnings = I(as.character(unlist(oi$warnings))),
       max_abs_grad = if (is.null(oi$derivs)) NULL else max(abs(oi$derivs$gradient)))
}

# data frame -> list of row objects (columns by name; NA -> null)
df_rows <- function(df) {
  df <- as.data.frame(df)
  for (col in names(df)) if (is.factor(df[[col]])) df[[col]] <- as.character(df[[col]])
  lapply(seq_len(nrow(df)), function(i) {
    row <- lapply(df[i, , drop = FALSE], function(v) if (length(v) == 1 && is.na(v)) NULL else v)
    names(row) <- names(df)
    row
  })
}

write_fixture <- function(out, path) {
  dir.create(dirname(path), showWarnings = FALSE, recursive = TRUE)
  write_json(out, path, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null", na = "null")
}

session_info <- function(pkgs, models, datasets) {
  list(R = R.version.string, platform = R.version$platform,
       packages = lapply(setNames(nm = pkgs), function(p)
         tryCatch(as.character(packageVersion(p)), error = function(e) NULL)),
       collate = "C", models = I(models), datasets = I(datasets))
}
