# make_fixtures.R -- bundled datasets and lme4 reference fits for lme2sm's tests.
#
# Writes
#   lme2sm/datasets/*.csv           the example datasets (factor columns as strings)
#   tests/fixtures/models/<name>.json  one lme4 fit per model of the suite below
#   tests/fixtures/models/_session.json R / package versions used
#   benchmarks/data/InstEval.csv     full lme4::InstEval (gitignored, for benchmarks)
#
# Run from the project root (takes two to three minutes; profiling schools_slopes is the slowest):
#
#   apt-get update && apt-get install -y r-base-core r-cran-lme4 r-cran-lmertest r-cran-jsonlite
#   Rscript tools/make_fixtures.R
#
# (nlme comes with r-base-core's recommended packages, r-cran-nlme.) The script first
# calls `python tools/make_fixtures.py --schools-only` ($PYTHON, else the first
# python/python3 with numpy and pandas) so lme2sm's own generator writes schools.csv; `python tools/make_fixtures.py`
# does the same and then runs this script. Every dataset is read BACK FROM ITS CSV
# before fitting, with factor levels sorted in the C locale (as Python sorts strings),
# so R and Python see identical data and level orders.
#
# Fixture JSON keys: name, dataset, formula, REML, bars (lme4's findbars of the
# expanded formula), logLik, df, AIC, BIC, deviance (null for REML fits), devianceML
# (-2 logLik of the ML refit), logLikML, REMLcrit (null for ML fits), sigma, nobs,
# ngrps, fixef, se, tvalue, vcov + vcov_names, varcorr (rows of
# as.data.frame(VarCorr(m))), ranef ({levels, columns, values} per grouping factor),
# isSingular, messages, warnings, summary (printed summary(m)), fitted_head,
# residuals_head, satterthwaite (lmerTest df and p per fixed effect), anova_III
# (lmerTest type III Satterthwaite table), confint_wald and confint_profile
# (oldNames=FALSE row names -> [lower, upper]; null when skipped or failed, then
# confint_profile_error says why), thetas, optimizer.

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest, exclude = "lmer")  # lme4::lmer for the main fits
  library(jsonlite)
})
stopifnot(requireNamespace("nlme", quietly = TRUE))

invisible(Sys.setlocale("LC_COLLATE", "C"))
options(width = 80, digits = 7, warn = 1)

if (!file.exists("tools/make_fixtures.R")) stop("run from the project root: Rscript tools/make_fixtures.R")
DATA_DIR <- "lme2sm/datasets"
FIX_DIR <- "tests/fixtures/models"
BENCH_DIR <- "benchmarks/data"
dir.create(DATA_DIR, showWarnings = FALSE, recursive = TRUE)
dir.create(FIX_DIR, showWarnings = FALSE, recursive = TRUE)
dir.create(BENCH_DIR, showWarnings = FALSE, recursive = TRUE)

t_start <- Sys.time()

# ---------------------------------------------------------------------------------
# 1. datasets
# ---------------------------------------------------------------------------------

# Factor columns of every dataset (the same list is lme2sm.datasets.FACTORS).
FACTORS <- list(
  sleepstudy = "Subject",
  Dyestuff = "Batch",
  Dyestuff2 = "Batch",
  Penicillin = c("plate", "sample"),
  Pastes = c("batch", "cask", "sample"),
  cake = c("replicate", "recipe"),
  Oats = c("Block", "Variety"),
  Orthodont = c("Subject", "Sex"),
  Machines = c("Worker", "Machine"),
  iris = "Species",
  insteval_small = c("s", "d", "dept", "service"),
  schools = c("student", "sex", "classroom", "school", "province", "rater", "exam")
)

plain <- function(df) {
  # drop groupedData/ordered classes: factors -> character, ordered numbers -> integer
  df <- as.data.frame(df, stringsAsFactors = FALSE)
  class(df) <- "data.frame"
  for (col in names(df)) {
    x <- df[[col]]
    if (is.factor(x)) df[[col]] <- as.character(x)
    attributes(df[[col]]) <- NULL
  }
  df
}

write_dataset <- function(df, name, dir = DATA_DIR) {
  write.csv(df, file.path(dir, paste0(name, ".csv")), row.names = FALSE, quote = TRUE, eol = "\n")
}

read_dataset <- function(name) {
  path <- file.path(DATA_DIR, paste0(name, ".csv"))
  hdr <- names(read.csv(path, nrows = 1, check.names = FALSE))
  cc <- setNames(rep(NA_character_, length(hdr)), hdr)
  cc[FACTORS[[name]]] <- "character"
  df <- read.csv(path, colClasses = cc, check.names = FALSE, stringsAsFactors = FALSE)
  for (col in FACTORS[[name]]) df[[col]] <- factor(df[[col]], levels = sort(unique(df[[col]])))
  df
}

InstEval <- lme4::InstEval
# insteval_small: the 4 smallest departments by number of ratings (7, 1, 15, 5) and
# students with id <= 600: 2759 ratings, 348 students x 276 lecturers, crossed.
ie_small <- InstEval[InstEval$dept %in% c("7", "1", "15", "5") &
                       as.integer(as.character(InstEval$s)) <= 600, ]
ie_cols <- function(d) {
  d <- plain(d[, c("y", "s", "d", "dept", "service", "studage", "lectage")])
  d$studage <- as.integer(d$studage)
  d$lectage <- as.integer(d$lectage)
  d
}
ie_small <- ie_cols(ie_small)
ie_full <- ie_cols(InstEval)

cake_df <- plain(lme4::cake)
cake_df$temperature <- NULL  # ordered copy of temp; temp (numeric) is kept

sources <- list(
  sleepstudy = plain(lme4::sleepstudy),
  Dyestuff = plain(lme4::Dyestuff),
  Dyestuff2 = plain(lme4::Dyestuff2),
  Penicillin = plain(lme4::Penicillin),
  Pastes = plain(lme4::Pastes),
  cake = cake_df,
  Oats = plain(nlme::Oats)[, c("Block", "Variety", "nitro", "yield")],
  Orthodont = plain(nlme::Orthodont)[, c("distance", "age", "Subject", "Sex")],
  Machines = plain(nlme::Machines)[, c("Worker", "Machine", "score")],
  iris = plain(datasets::iris),
  insteval_small = ie_small
)
for (nm in names(sources)) write_dataset(sources[[nm]], nm)
write_dataset(ie_full, "InstEval", BENCH_DIR)
cat("wrote", length(sources), "datasets and", file.path(BENCH_DIR, "InstEval.csv"), "\n")

if (Sys.getenv("LME2SM_SCHOOLS_DONE") != "1") {
  # $PYTHON, else the first of python / python3 that can import numpy and pandas
  cands <- c(Sys.getenv("PYTHON"), "python", "python3")
  cands <- cands[nzchar(cands) & nzchar(Sys.which(cands))]
  # R's LD_LIBRARY_PATH can make a pyenv/venv python load the system libpython (and lose
  # its site-packages), so call python with it cleared.
  noldp <- "LD_LIBRARY_PATH="
  ok <- vapply(cands, function(p) suppressWarnings(system2(p, c("-c", shQuote("import numpy, pandas")),
                                                          stdout = FALSE, stderr = FALSE, env = noldp)) == 0, TRUE)
  if (!any(ok)) stop("no python with numpy and pandas found; set $PYTHON")
  py <- cands[ok][1]
  status <- system2(py, c("tools/make_fixtures.py", "--schools-only"), env = noldp)
  if (status != 0) stop("could not write schools.csv with ", py, " tools/make_fixtures.py --schools-only")
}
if (!file.exists(file.path(DATA_DIR, "schools.csv"))) stop("schools.csv missing")

DATA <- lapply(setNames(nm = names(FACTORS)), read_dataset)
for (nm in names(DATA)) cat(sprintf("  %-15s %5d rows, %d columns\n", nm, nrow(DATA[[nm]]), ncol(DATA[[nm]])))

# ---------------------------------------------------------------------------------
# 2. the model suite (names are the contract with the Python tests)
# ---------------------------------------------------------------------------------

SUITE <- list(
  list(name = "sleepstudy_corr", dataset = "sleepstudy", formula = "Reaction ~ Days + (Days | Subject)"),
  list(name = "sleepstudy_uncorr", dataset = "sleepstudy", formula = "Reaction ~ Days + (Days || Subject)"),
  list(name = "sleepstudy_ml", dataset = "sleepstudy", formula = "Reaction ~ Days + (Days | Subject)", REML = FALSE),
  list(name = "sleepstudy_int", dataset = "sleepstudy", formula = "Reaction ~ Days + (1 | Subject)"),
  list(name = "sleepstudy_int_ml", dataset = "sleepstudy", formula = "Reaction ~ Days + (1 | Subject)", REML = FALSE),
  list(name = "sleepstudy_quad", dataset = "sleepstudy", formula = "Reaction ~ Days + I(Days^2) + (1 | Subject)"),
  list(name = "sleepstudy_slope_only", dataset = "sleepstudy", formula = "Reaction ~ Days + (0 + Days | Subject)"),
  list(name = "dyestuff", dataset = "Dyestuff", formula = "Yield ~ 1 + (1 | Batch)"),
  list(name = "dyestuff_ml", dataset = "Dyestuff", formula = "Yield ~ 1 + (1 | Batch)", REML = FALSE),
  list(name = "dyestuff2_singular", dataset = "Dyestuff2", formula = "Yield ~ 1 + (1 | Batch)"),
  list(name = "penicillin", dataset = "Penicillin", formula = "diameter ~ 1 + (1 | plate) + (1 | sample)"),
  list(name = "penicillin_ml", dataset = "Penicillin", formula = "diameter ~ 1 + (1 | plate) + (1 | sample)", REML = FALSE),
  list(name = "pastes_nested", dataset = "Pastes", formula = "strength ~ 1 + (1 | batch/cask)"),
  list(name = "pastes_explicit", dataset = "Pastes", formula = "strength ~ 1 + (1 | batch) + (1 | batch:cask)"),
  list(name = "pastes_sample", dataset = "Pastes", formula = "strength ~ 1 + (1 | batch) + (1 | sample)"),
  list(name = "oats", dataset = "Oats", formula = "yield ~ nitro + Variety + (1 | Block/Variety)"),
  list(name = "cake", dataset = "cake", formula = "angle ~ recipe * temp + (1 | recipe:replicate)"),
  list(name = "orthodont", dataset = "Orthodont", formula = "distance ~ age + Sex + (age | Subject)"),
  list(name = "orthodont_ml", dataset = "Orthodont", formula = "distance ~ age + Sex + (age | Subject)", REML = FALSE),
  list(name = "machines_factor_slope", dataset = "Machines", formula = "score ~ Machine + (Machine | Worker)"),
  list(name = "machines_uncorr_factor", dataset = "Machines", formula = "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)"),
  list(name = "iris_dots", dataset = "iris", formula = "Sepal.Length ~ Petal.Length + (1 | Species)"),
  list(name = "schools_intercepts", dataset = "schools", formula = "test_score ~ age + sex + (1 | province/school/classroom)"),
  list(name = "schools_slopes", dataset = "schools",
       formula = "test_score ~ age + sex + (age | province) + (1 | province:school) + (1 | province:school:classroom)"),
  list(name = "schools_uncorr", dataset = "schools", formula = "test_score ~ age + (age || school) + (1 | school:classroom)"),
  list(name = "schools_partial", dataset = "schools", formula = "test_score ~ age + (1 | school) + (1 | rater)"),
  list(name = "schools_crossed", dataset = "schools",
       formula = "test_score ~ age + sex + (1 | school) + (1 | school:classroom) + (1 | exam)"),
  # statsmodels' default L-BFGS stops short on this one (uncentred slope): the polish must reach lme4
  list(name = "schools_polish", dataset = "schools", profile = FALSE,
       formula = "test_score ~ age + (1 | province) + (age || province:school:classroom)"),
  list(name = "insteval_small", dataset = "insteval_small", formula = "y ~ service + (1 | s) + (1 | d)", profile = FALSE),
  list(name = "insteval_small_dept", dataset = "insteval_small",
       formula = "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)", profile = FALSE)
)

# ---------------------------------------------------------------------------------
# 3. helpers
# ---------------------------------------------------------------------------------

num <- function(x) { x <- as.numeric(x); if (length(x) == 1 && is.na(x)) NULL else x }
named_list <- function(x) { out <- as.list(unname(as.numeric(x))); names(out) <- names(x); out }
rows_of <- function(m) lapply(seq_len(nrow(m)), function(i) I(unname(as.numeric(m[i, ]))))

# Evaluate expr, collecting (and muffling) its messages and warnings.
capture <- function(expr) {
  msgs <- character(); warns <- character()
  value <- withCallingHandlers(expr,
    message = function(c) { msgs <<- c(msgs, trimws(conditionMessage(c))); invokeRestart("muffleMessage") },
    warning = function(c) { warns <<- c(warns, conditionMessage(c)); invokeRestart("muffleWarning") })
  list(value = value, messages = msgs, warnings = warns)
}

confint_list <- function(ci) {
  out <- lapply(seq_len(nrow(ci)), function(i) I(unname(as.numeric(ci[i, ]))))
  names(out) <- rownames(ci)
  out
}

ranef_json <- function(m) {
  re <- ranef(m)
  out <- lapply(names(re), function(g) {
    d <- re[[g]]
    list(levels = I(rownames(d)), columns = I(colnames(d)), values = rows_of(as.matrix(d)))
  })
  names(out) <- names(re)
  out
}

varcorr_json <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  lapply(seq_len(nrow(vc)), function(i) list(
    grp = vc$grp[i],
    var1 = if (is.na(vc$var1[i])) NULL else vc$var1[i],
    var2 = if (is.na(vc$var2[i])) NULL else vc$var2[i],
    vcov = vc$vcov[i], sdcor = vc$sdcor[i]))
}

satterthwaite_json <- function(mt) {
  cf <- coef(summary(mt))
  out <- lapply(rownames(cf), function(r) list(
    estimate = cf[r, "Estimate"], se = cf[r, "Std. Error"], df = cf[r, "df"],
    t = cf[r, "t value"], p = cf[r, "Pr(>|t|)"]))
  names(out) <- rownames(cf)
  out
}

anova_json <- function(mt) {
  a <- anova(mt, type = 3, ddf = "Satterthwaite")
  if (nrow(a) == 0) return(I(list()))
  lapply(seq_len(nrow(a)), function(i) list(
    term = rownames(a)[i], SumSq = a[i, "Sum Sq"], MeanSq = a[i, "Mean Sq"],
    NumDF = a[i, "NumDF"], DenDF = a[i, "DenDF"], F = a[i, "F value"], p = a[i, "Pr(>F)"]))
}

optimizer_json <- function(m) {
  oi <- m@optinfo
  list(optimizer = oi$optimizer, control = oi$control, feval = oi$feval,
       conv_opt = oi$conv$opt, lme4_messages = I(as.character(unlist(oi$conv$lme4$messages))),
       optimizer_warnings = I(as.character(unlist(oi$warnings))),
       max_abs_grad = if (is.null(oi$derivs)) NULL else max(abs(oi$derivs$gradient)))
}

fit_model <- function(spec) {
  REML <- if (is.null(spec$REML)) TRUE else spec$REML
  data <- DATA[[spec$dataset]]
  f <- as.formula(spec$formula)
  t0 <- Sys.time()
  # evaluate with the data bound to the dataset's name so summary() prints "Data: <dataset>"
  env <- list2env(setNames(list(data), spec$dataset), parent = globalenv())
  fit <- capture(eval(bquote(lme4::lmer(.(f), data = .(as.name(spec$dataset)), REML = .(REML))), env))
  m <- fit$value
  ll <- logLik(m)
  ml <- if (REML) capture(refitML(m))$value else m
  mt <- capture(eval(bquote(lmerTest::lmer(.(f), data = .(as.name(spec$dataset)), REML = .(REML))), env))$value

  ci_w <- confint(m, method = "Wald", oldNames = FALSE)
  do_profile <- is.null(spec$profile) || isTRUE(spec$profile)
  prof <- NULL; prof_err <- NULL; prof_warn <- character()
  if (do_profile) {
    p <- tryCatch(capture(confint(m, method = "profile", oldNames = FALSE)),
                  error = function(e) { prof_err <<- conditionMessage(e); NULL })
    if (!is.null(p)) { prof <- confint_list(p$value); prof_warn <- unique(p$warnings) }
  } else prof_err <- "skipped (slow for this model)"

  th <- getME(m, "theta")
  out <- list(
    name = spec$name, dataset = spec$dataset, formula = spec$formula, REML = REML,
    bars = I(vapply(findbars(expandDoubleVerts(f)), function(b) paste(deparse(b), collapse = ""), "")),
    logLik = as.numeric(ll), df = attr(ll, "df"), AIC = AIC(m), BIC = BIC(m),
    deviance = if (REML) NULL else deviance(m),
    devianceML = -2 * as.numeric(logLik(ml)), logLikML = as.numeric(logLik(ml)),
    REMLcrit = if (REML) REMLcrit(m) else NULL,
    sigma = sigma(m), nobs = nobs(m), ngrps = as.list(ngrps(m)),
    fixef = named_list(fixef(m)),
    se = named_list(sqrt(diag(as.matrix(vcov(m))))),
    tvalue = named_list(coef(summary(m))[, "t value"]),
    vcov = rows_of(as.matrix(vcov(m))), vcov_names = I(colnames(vcov(m))),
    varcorr = varcorr_json(m),
    ranef = ranef_json(m),
    isSingular = isSingular(m),
    messages = I(fit$messages), warnings = I(fit$warnings),
    summary = paste(capture.output(print(summary(m))), collapse = "\n"),
    fitted_head = I(unname(head(fitted(m), 20))),
    residuals_head = I(unname(head(residuals(m), 20))),
    satterthwaite = satterthwaite_json(mt),
    anova_III = anova_json(mt),
    confint_wald = confint_list(ci_w),
    confint_profile = prof,
    confint_profile_error = prof_err,
    confint_profile_warnings = I(prof_warn),
    thetas = named_list(th),
    optimizer = optimizer_json(m)
  )
  path <- file.path(FIX_DIR, paste0(spec$name, ".json"))
  write_json(out, path, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null", na = "null")
  note <- c(if (isSingular(m)) "singular", fit$messages, fit$warnings,
            if (!is.null(prof_err) && do_profile) paste("profile failed:", prof_err))
  cat(sprintf("  %-24s logLik %14.6f  %5.1fs %s\n", spec$name, as.numeric(ll),
              as.numeric(difftime(Sys.time(), t0, units = "secs")), paste(note, collapse = "; ")))
  invisible(out)
}

# ---------------------------------------------------------------------------------
# 4. fit and write
# ---------------------------------------------------------------------------------

old <- list.files(FIX_DIR, pattern = "\\.json$", full.names = TRUE)
unlink(old)
cat("fitting", length(SUITE), "models\n")
for (spec in SUITE) fit_model(spec)

pkgs <- c("lme4", "lmerTest", "Matrix", "nlme", "jsonlite", "minqa", "nloptr")
session <- list(
  R = R.version.string, platform = R.version$platform,
  packages = lapply(setNames(nm = pkgs), function(p) tryCatch(as.character(packageVersion(p)), error = function(e) NULL)),
  collate = "C",
  models = I(vapply(SUITE, function(s) s$name, "")),
  datasets = I(names(FACTORS))
)
write_json(session, file.path(FIX_DIR, "_session.json"), auto_unbox = TRUE, digits = NA,
           pretty = TRUE, null = "null", na = "null")
cat(sprintf("done in %.0fs\n", as.numeric(difftime(Sys.time(), t_start, units = "secs"))))
