# make_fixtures.R -- bundled datasets and lme4 reference fits for lme2sm's tests.
#
# Writes
#   lme2sm/datasets/*.csv           the example datasets (factor columns as strings)
#   tests/fixtures/models/<name>.json  one lme4 fit per model of the suite below
#   tests/fixtures/models/_session.json R / package versions used
#   benchmarks/data/InstEval.csv     full lme4::InstEval (gitignored, for benchmarks)
#   lme2sm/datasets/{IGF,Hsb82,Early,Exam,carrots}.csv  nlme / mlmRev / lmerTest data used
#                                    by the extra suite (not yet in lme2sm.datasets.FACTORS;
#                                    their factor columns are EXTRA_FACTORS below)
#   tests/fixtures/lmer_extra/<name>.json  the extra suite (SUITE_EXTRA): weights, offsets,
#                                    NA rows, rank-deficient X, singular +-1 correlations,
#                                    correlated terms on crossed / nested / >127-level factors
#   tests/fixtures/lmer_extra/data/*.csv  derived data of the extra suite (sleepstudy with a
#                                    weight and a collinear column, with NA cells, ...)
#   tests/fixtures/lmer_extra/_session.json
#
# The extra suite has its own directory because tests/*.py fit every models/*.json with
# lme2sm.datasets.load(dataset), no weights, all rows and expect only dyestuff2_singular to
# be singular; the extra fixtures break those assumptions (move them once the tests read
# data_path / weights).
#
# Run from the project root (profiling schools_slopes is the slowest part of main):
#
#   apt-get update && apt-get install -y r-base-core r-cran-lme4 r-cran-lmertest r-cran-jsonlite \
#       r-cran-mlmrev
#   Rscript tools/make_fixtures.R          # datasets, then both suites
#   Rscript tools/make_fixtures.R main     # datasets, then only tests/fixtures/models
#   Rscript tools/make_fixtures.R extra    # datasets, then only tests/fixtures/lmer_extra
#
# (main takes about three minutes, extra about two; the extra schools_seed2* models and
# their tight refits are the slowest.)
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
# Added keys (every fixture): weights (column name or null), data_path (CSV, relative to
# the project root), factors (its columns read as strings, levels sorted in C locale),
# nrow_data (rows in the CSV), na_rows (0-based CSV rows lme4 dropped for NA), fixef_dropped
# (columns lme4 dropped from a rank-deficient X), and lme4's best optimum from tight refits
# (see tight_refit below; run for every extra fixture and for any fit lme4 warns about,
# else the values are null and tight_method is "skipped"): logLik_tight, theta_tight,
# fixef_tight, sigma_tight, tight_method ("default" when no refit beat lme4's default fit,
# else the winning refit), tight_gain (logLik_tight - logLik, >= 0), tight_warnings. For REML
# fits the tight logLik is the REML one, as logLik. theta is lme4's "thetas" key.

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
EXTRA_DIR <- "tests/fixtures/lmer_extra"
EXTRA_DATA_DIR <- file.path(EXTRA_DIR, "data")
dir.create(EXTRA_DATA_DIR, showWarnings = FALSE, recursive = TRUE)

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

write_dataset <- function(df, name, dir = DATA_DIR, na = "NA") {
  write.csv(df, file.path(dir, paste0(name, ".csv")), row.names = FALSE, quote = TRUE, eol = "\n", na = na)
}

# Read a CSV with the given factor columns as factors whose levels are sorted (C locale).
# Empty cells are NA only when na_empty (the extra suite's NA data).
read_csv_data <- function(path, factors, na_empty = FALSE) {
  hdr <- names(read.csv(path, nrows = 1, check.names = FALSE))
  cc <- setNames(rep(NA_character_, length(hdr)), hdr)
  cc[factors] <- "character"
  na <- if (na_empty) c("", "NA") else "NA"
  df <- read.csv(path, colClasses = cc, check.names = FALSE, stringsAsFactors = FALSE, na.strings = na)
  for (col in factors) df[[col]] <- factor(df[[col]], levels = sort(unique(df[[col]])))
  df
}

read_dataset <- function(name) read_csv_data(file.path(DATA_DIR, paste0(name, ".csv")), FACTORS[[name]])

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

# Where every dataset's CSV is and which columns are factors (the main suite's, then the
# extra suite's). na_empty: empty cells are missing values (the extra suite's CSVs write
# NA as an empty cell, as pandas.read_csv reads it by default).
DATA_SOURCES <- lapply(setNames(nm = names(FACTORS)), function(nm)
  list(path = file.path(DATA_DIR, paste0(nm, ".csv")), factors = FACTORS[[nm]], na_empty = FALSE))

# Datasets of the extra suite bundled with lme2sm (real data from nlme, mlmRev, lmerTest).
EXTRA_FACTORS <- list(
  IGF = "Lot",
  Hsb82 = c("school", "minrty", "sx", "sector"),
  Early = c("id", "trt"),
  Exam = c("school", "schgend", "vr", "intake", "sex", "type", "student"),
  carrots = c("Consumer", "Frequency", "Gender", "Age", "Homesize", "Work", "Income", "Product")
)
stopifnot(requireNamespace("mlmRev", quietly = TRUE))
carrots_env <- new.env()
utils::data("carrots", package = "lmerTest", envir = carrots_env)
extra_sources <- list(
  IGF = plain(nlme::IGF)[, c("Lot", "age", "conc")],
  Hsb82 = plain(mlmRev::Hsb82),
  Early = plain(mlmRev::Early),
  Exam = plain(mlmRev::Exam),
  carrots = plain(carrots_env$carrots)
)
# missing values (carrots has some) are written as empty cells
for (nm in names(extra_sources)) {
  write_dataset(extra_sources[[nm]], nm, na = "")
  DATA_SOURCES[[nm]] <- list(path = file.path(DATA_DIR, paste0(nm, ".csv")),
                             factors = EXTRA_FACTORS[[nm]], na_empty = TRUE)
}

# Derived test data (tests/fixtures/lmer_extra/data), built from the CSVs read back above.
# w = 1 + ((7 i) mod 11) / 10 for row i: deterministic weights in [1, 2].
det_weights <- function(n) 1 + ((7 * seq_len(n)) %% 11) / 10
ss <- plain(DATA$sleepstudy)
derived <- list(
  # Days2 = 2 Days (collinear: lme4 drops it), w a prior weight
  sleepstudy_extra = list(df = transform(ss, Days2 = 2 * Days, w = det_weights(nrow(ss))),
                          factors = "Subject"),
  # NA cells: Reaction (rows 5, 40), Days (17, 88, 133), Subject (60, 61, 150), 1-based
  sleepstudy_na = list(df = within(ss, {
                         Reaction[c(5, 40)] <- NA; Days[c(17, 88, 133)] <- NA
                         Subject[c(60, 61, 150)] <- NA }),
                       factors = "Subject", na_empty = TRUE),
  penicillin_w = list(df = transform(plain(DATA$Penicillin), w = det_weights(nrow(DATA$Penicillin))),
                      factors = FACTORS$Penicillin),
  pastes_w = list(df = transform(plain(DATA$Pastes), w = det_weights(nrow(DATA$Pastes))),
                  factors = FACTORS$Pastes)
)
for (nm in names(derived)) {
  path <- file.path(EXTRA_DATA_DIR, paste0(nm, ".csv"))
  write.csv(derived[[nm]]$df, path, row.names = FALSE, quote = TRUE, eol = "\n", na = "")
  DATA_SOURCES[[nm]] <- list(path = path, factors = derived[[nm]]$factors,
                             na_empty = isTRUE(derived[[nm]]$na_empty))
}
for (nm in setdiff(names(DATA_SOURCES), names(DATA))) {
  src <- DATA_SOURCES[[nm]]
  DATA[[nm]] <- read_csv_data(src$path, src$factors, src$na_empty)
  cat(sprintf("  %-15s %5d rows, %d columns  (%s)\n", nm, nrow(DATA[[nm]]), ncol(DATA[[nm]]), src$path))
}

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

# The extra suite (tests/fixtures/lmer_extra). weights = a column of the data.
SUITE_EXTRA <- list(
  # the seed scenario with sex, literally: classroom labels 1-4 are reused in every school,
  # so (age | classroom) groups by 4 labels crossed with school (singular, corr -1)
  list(name = "schools_seed2", dataset = "schools", profile = FALSE,
       formula = "test_score ~ age + sex + (age | classroom) + (age | school) + (age | province)"),
  # ... and with classrooms nested as the other schools fixtures do (lme4 warns: max|grad| 0.15)
  list(name = "schools_seed2_nested", dataset = "schools", profile = FALSE,
       formula = "test_score ~ age + sex + (age | school:classroom) + (age | school) + (age | province)"),
  list(name = "schools_seed2_nested_ml", dataset = "schools", profile = FALSE, REML = FALSE,
       formula = "test_score ~ age + sex + (age | school:classroom) + (age | school) + (age | province)"),
  # correlated vector terms with crossed grouping factors
  list(name = "schools_crossed_slopes", dataset = "schools", profile = FALSE,
       formula = "test_score ~ age + (age | school) + (1 | exam)"),
  list(name = "carrots_corr", dataset = "carrots",
       formula = "Preference ~ sens2 + (1 + sens2 | Consumer) + (1 | Product)"),
  list(name = "carrots_corr_ml", dataset = "carrots", REML = FALSE,
       formula = "Preference ~ sens2 + (1 + sens2 | Consumer) + (1 | Product)"),
  list(name = "insteval_small_slopes", dataset = "insteval_small", profile = FALSE,
       formula = "y ~ service + (service | d) + (1 | s)"),
  # correlation at -1 (singular)
  list(name = "igf_singular", dataset = "IGF", profile = FALSE, formula = "conc ~ age + (age | Lot)"),
  list(name = "early_singular", dataset = "Early", profile = FALSE, formula = "cog ~ age * trt + (age | id)"),
  # vector terms: 65 schools, 160 schools (> 127 levels)
  list(name = "exam", dataset = "Exam", profile = FALSE,
       formula = "normexam ~ standLRT + sex + schgend + (standLRT | school)"),
  list(name = "hsb82", dataset = "Hsb82", profile = FALSE, formula = "mAch ~ meanses * cses + (cses | school)"),
  list(name = "hsb82_ml", dataset = "Hsb82", profile = FALSE, REML = FALSE,
       formula = "mAch ~ meanses * cses + (cses | school)"),
  # rank-deficient X: Days2 = 2 Days is dropped
  list(name = "sleepstudy_rankdef", dataset = "sleepstudy_extra", profile = FALSE,
       formula = "Reaction ~ Days + Days2 + (Days | Subject)"),
  # prior weights
  list(name = "sleepstudy_weights", dataset = "sleepstudy_extra", weights = "w",
       formula = "Reaction ~ Days + (Days | Subject)"),
  list(name = "sleepstudy_weights_ml", dataset = "sleepstudy_extra", weights = "w", REML = FALSE,
       formula = "Reaction ~ Days + (Days | Subject)"),
  list(name = "penicillin_weights", dataset = "penicillin_w", weights = "w",
       formula = "diameter ~ 1 + (1 | plate) + (1 | sample)"),
  list(name = "pastes_weights", dataset = "pastes_w", weights = "w",
       formula = "strength ~ 1 + (1 | batch/cask)"),
  # rows with NA in the response, a covariate or the grouping factor are dropped
  list(name = "sleepstudy_na", dataset = "sleepstudy_na", formula = "Reaction ~ Days + (Days | Subject)"),
  # offsets
  list(name = "sleepstudy_offset", dataset = "sleepstudy",
       formula = "Reaction ~ Days + offset(Days/2) + (1 | Subject)"),
  list(name = "sleepstudy_offset_ml", dataset = "sleepstudy", REML = FALSE,
       formula = "Reaction ~ Days + offset(Days/2) + (1 | Subject)")
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

# The call lmer(formula, data = <dataset>, REML = , weights = <column>, control = , start = ),
# with the data bound to the dataset's name so summary() prints "Data: <dataset>".
lmer_call <- function(spec, fun = quote(lme4::lmer), control = NULL, start = NULL) {
  REML <- if (is.null(spec$REML)) TRUE else spec$REML
  args <- list(as.formula(spec$formula), data = as.name(spec$dataset), REML = REML)
  if (!is.null(spec$weights)) args$weights <- as.name(spec$weights)
  if (!is.null(control)) args$control <- control
  if (!is.null(start)) args$start <- start
  as.call(c(fun, args))
}

# lme4's best optimum: the default fit, a fresh NLopt BOBYQA with tight tolerances
# ("nloptwrap_tight"), the same restarted from the default optimum ("nloptwrap_restart")
# and, when lme4 warned about convergence, minqa's BOBYQA restarted from the default
# optimum with rhobeg 1e-3, rhoend 1e-10, maxfun 1e5 ("bobyqa_restart"). The highest
# logLik (REML criterion for REML fits) wins; "default" when no refit beat lme4's fit.
NLOPT_TIGHT <- list(xtol_rel = 1e-12, xtol_abs = 1e-12, ftol_abs = 1e-12, ftol_rel = 1e-14, maxeval = 1e5)
tight_refit <- function(spec, m, env, warned) {
  th <- getME(m, "theta")
  lower <- getME(m, "lower")
  start <- ifelse(is.finite(lower) & th - lower < 1e-4, lower + 1e-4, th)  # inside the bounds
  refit <- function(control, start = NULL)
    tryCatch(capture(eval(lmer_call(spec, control = control, start = start), env)), error = function(e) NULL)
  tries <- list(
    nloptwrap_tight = refit(lmerControl(optimizer = "nloptwrap", optCtrl = NLOPT_TIGHT)),
    nloptwrap_restart = refit(lmerControl(optimizer = "nloptwrap", optCtrl = NLOPT_TIGHT), start),
    bobyqa_restart = if (warned) refit(lmerControl(optimizer = "bobyqa",
                       optCtrl = list(rhobeg = 1e-3, rhoend = 1e-10, maxfun = 1e5)), start))
  best <- list(method = "default", m = m, warnings = character())
  for (nm in names(tries)) {
    t <- tries[[nm]]
    if (!is.null(t) && as.numeric(logLik(t$value)) > as.numeric(logLik(best$m)) + 1e-10)
      best <- list(method = nm, m = t$value, warnings = unique(c(t$messages, t$warnings)))
  }
  b <- best$m
  list(logLik_tight = as.numeric(logLik(b)), theta_tight = named_list(getME(b, "theta")),
       fixef_tight = named_list(fixef(b)), sigma_tight = sigma(b), tight_method = best$method,
       tight_gain = as.numeric(logLik(b)) - as.numeric(logLik(m)),
       tight_warnings = I(best$warnings))
}
NO_TIGHT <- list(logLik_tight = NULL, theta_tight = NULL, fixef_tight = NULL, sigma_tight = NULL,
                 tight_method = "skipped", tight_gain = NULL, tight_warnings = I(character()))

fit_model <- function(spec, dir = FIX_DIR, tight = FALSE) {
  REML <- if (is.null(spec$REML)) TRUE else spec$REML
  data <- DATA[[spec$dataset]]
  f <- as.formula(spec$formula)
  t0 <- Sys.time()
  env <- list2env(setNames(list(data), spec$dataset), parent = globalenv())
  fit <- capture(eval(lmer_call(spec), env))
  m <- fit$value
  ll <- logLik(m)
  ml <- if (REML) capture(refitML(m))$value else m
  mt <- capture(eval(lmer_call(spec, fun = quote(lmerTest::lmer)), env))$value

  ci_w <- confint(m, method = "Wald", oldNames = FALSE)
  do_profile <- is.null(spec$profile) || isTRUE(spec$profile)
  prof <- NULL; prof_err <- NULL; prof_warn <- character()
  if (do_profile) {
    p <- tryCatch(capture(confint(m, method = "profile", oldNames = FALSE)),
                  error = function(e) { prof_err <<- conditionMessage(e); NULL })
    if (!is.null(p)) { prof <- confint_list(p$value); prof_warn <- unique(p$warnings) }
  } else prof_err <- "skipped (slow for this model)"

  th <- getME(m, "theta")
  src <- DATA_SOURCES[[spec$dataset]]
  na_act <- attr(model.frame(m), "na.action")
  dropped <- attr(getME(m, "X"), "col.dropped")
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
    optimizer = optimizer_json(m),
    weights = spec$weights,
    data_path = src$path, factors = I(src$factors), nrow_data = nrow(data),
    na_rows = I(if (is.null(na_act)) integer() else unname(as.integer(na_act)) - 1L),
    fixef_dropped = I(if (is.null(dropped)) character() else names(dropped))
  )
  warned <- length(m@optinfo$conv$lme4$code) > 0 || length(m@optinfo$warnings) > 0 ||
    any(grepl("converge|unidentifiable", fit$warnings))
  out <- c(out, if (tight || warned) tight_refit(spec, m, env, warned) else NO_TIGHT)
  path <- file.path(dir, paste0(spec$name, ".json"))
  write_json(out, path, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null", na = "null")
  note <- c(if (isSingular(m)) "singular", fit$messages, fit$warnings,
            if (!is.null(out$tight_gain) && out$tight_gain > 1e-6) sprintf("tight refit gains %.3g (%s)", out$tight_gain, out$tight_method),
            if (!is.null(prof_err) && do_profile) paste("profile failed:", prof_err))
  cat(sprintf("  %-28s logLik %14.6f  %5.1fs %s\n", spec$name, as.numeric(ll),
              as.numeric(difftime(Sys.time(), t0, units = "secs")), paste(note, collapse = "; ")))
  invisible(out)
}

# ---------------------------------------------------------------------------------
# 4. fit and write
# ---------------------------------------------------------------------------------

PARTS <- commandArgs(trailingOnly = TRUE)
if (length(PARTS) == 0) PARTS <- c("main", "extra")
stopifnot(all(PARTS %in% c("main", "extra")))
if ("main" %in% PARTS) {
  unlink(list.files(FIX_DIR, pattern = "\\.json$", full.names = TRUE))
  cat("fitting", length(SUITE), "models\n")
  for (spec in SUITE) fit_model(spec)
}
if ("extra" %in% PARTS) {
  unlink(list.files(EXTRA_DIR, pattern = "\\.json$", full.names = TRUE))
  cat("fitting", length(SUITE_EXTRA), "extra models\n")
  for (spec in SUITE_EXTRA) fit_model(spec, EXTRA_DIR, tight = TRUE)
}

pkgs <- c("lme4", "lmerTest", "Matrix", "nlme", "jsonlite", "minqa", "nloptr")
session <- list(
  R = R.version.string, platform = R.version$platform,
  packages = lapply(setNames(nm = pkgs), function(p) tryCatch(as.character(packageVersion(p)), error = function(e) NULL)),
  collate = "C",
  models = I(vapply(SUITE, function(s) s$name, "")),
  datasets = I(names(FACTORS))
)
if ("main" %in% PARTS)
  write_json(session, file.path(FIX_DIR, "_session.json"), auto_unbox = TRUE, digits = NA,
             pretty = TRUE, null = "null", na = "null")
session$models <- I(vapply(SUITE_EXTRA, function(s) s$name, ""))
session$datasets <- I(setdiff(names(DATA_SOURCES), names(FACTORS)))
session$packages$mlmRev <- as.character(packageVersion("mlmRev"))
if ("extra" %in% PARTS)
  write_json(session, file.path(EXTRA_DIR, "_session.json"), auto_unbox = TRUE, digits = NA,
             pretty = TRUE, null = "null", na = "null")
cat(sprintf("done in %.0fs\n", as.numeric(difftime(Sys.time(), t_start, units = "secs"))))
