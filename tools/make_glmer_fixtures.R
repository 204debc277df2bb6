# make_glmer_fixtures.R -- lme4::glmer reference fits for lme2sm's glmer tests.
#
# Run from the project root (about two to three minutes; VerbAgg's correlated model and its
# tight refits are most of it):
#
#   apt-get install -y r-base-core r-cran-lme4 r-cran-jsonlite
#   Rscript tools/make_glmer_fixtures.R
#
# Writes
#   lme2sm/datasets/cbpp.csv          lme4::cbpp (herd, incidence, size, period)
#   lme2sm/datasets/grouseticks.csv   lme4::grouseticks (INDEX, TICKS, BROOD, HEIGHT, YEAR,
#                                     LOCATION, cHEIGHT = HEIGHT - mean(HEIGHT), as lme4's help)
#   lme2sm/datasets/VerbAgg.csv       lme4::VerbAgg (7584 rows; r2 = "N"/"Y" is the response)
#   tests/fixtures/glmer/data/poisson_exposure.csv  simulated counts y with an exposure
#                                     (set.seed below), 30 groups g x 12 rows
#   tests/fixtures/glmer/<name>.json  one glmer fit per model of SUITE below
#   tests/fixtures/glmer/_session.json  R / package versions, model and dataset names
#
# (The three lme4 datasets are not yet in lme2sm.datasets.FACTORS; their factor columns are
# listed in DATASETS below and in each fixture's "factors".) Every dataset is read BACK from
# its CSV before fitting, factor levels sorted in the C locale (as Python sorts strings), so
# R and Python see the same data and level orders (a factor response's first level, "N"
# for r2, is the failure).
#
# Fixture JSON keys: name, dataset, data_path, factors (columns read as strings), formula,
# family, link, nAGQ, weights (column name or null), bars, nobs, ngrps, df (number of
# parameters), df_resid, logLik, AIC, BIC, deviance (lme4's deviance(m)), minus2logLik
# (-2 logLik), devresid_sum (sum of squared deviance residuals), devcomp (m@devcomp$cmp),
# fixef, se, zvalue, pvalue, vcov + vcov_names, theta (getME(m, "theta"), named), varcorr
# (rows of as.data.frame(VarCorr(m))), ranef ({levels, columns, values} per grouping
# factor), fitted_head (20 values, response scale), residuals_head ({deviance, pearson,
# response, working}: 20 values each), predict_head ({link, response, link_fixed,
# response_fixed}: 20 values; *_fixed with re.form = NA), isSingular, messages, warnings,
# summary (printed summary(m)), optimizer, and lme4's best optimum from tight refits (see
# tight_refit below): logLik_tight, deviance_tight, theta_tight, fixef_tight, se_tight,
# tight_method ("default" when no refit beat the default fit, else the winner), tight_gain
# (logLik_tight - logLik, >= 0), tight_warnings.

suppressPackageStartupMessages(library(lme4))
source("tools/fixture_helpers.R")

DATA_DIR <- "lme2sm/datasets"
FIX_DIR <- "tests/fixtures/glmer"
FIX_DATA_DIR <- file.path(FIX_DIR, "data")
t_start <- Sys.time()

# ---------------------------------------------------------------------------------
# 1. datasets
# ---------------------------------------------------------------------------------

gt <- plain(lme4::grouseticks)[, c("INDEX", "TICKS", "BROOD", "HEIGHT", "YEAR", "LOCATION")]
gt$cHEIGHT <- gt$HEIGHT - mean(gt$HEIGHT)

# Simulated Poisson counts with an exposure: log E[y] = log(exposure) + 0.3 + 0.5 x + b_g,
# b_g ~ N(0, 0.4^2); 30 groups g01..g30 of 12 rows.
set.seed(20240607)
n_g <- 30; n_per <- 12
g <- rep(sprintf("g%02d", seq_len(n_g)), each = n_per)
b <- rnorm(n_g, 0, 0.4)
x <- round(rnorm(n_g * n_per), 3)
exposure <- round(runif(n_g * n_per, 0.5, 4), 3)
y <- rpois(n_g * n_per, exposure * exp(0.3 + 0.5 * x + b[as.integer(factor(g))]))
pexp <- data.frame(y = y, x = x, exposure = exposure, g = g, stringsAsFactors = FALSE)

DATASETS <- list(
  cbpp = list(df = plain(lme4::cbpp), path = file.path(DATA_DIR, "cbpp.csv"),
              factors = c("herd", "period")),
  grouseticks = list(df = gt, path = file.path(DATA_DIR, "grouseticks.csv"),
                     factors = c("INDEX", "BROOD", "YEAR", "LOCATION")),
  VerbAgg = list(df = plain(lme4::VerbAgg), path = file.path(DATA_DIR, "VerbAgg.csv"),
                 factors = c("Gender", "item", "resp", "id", "btype", "situ", "mode", "r2")),
  poisson_exposure = list(df = pexp, path = file.path(FIX_DATA_DIR, "poisson_exposure.csv"),
                          factors = "g")
)
DATA <- list()
for (nm in names(DATASETS)) {
  ds <- DATASETS[[nm]]
  write_csv_data(ds$df, ds$path)
  DATA[[nm]] <- read_csv_data(ds$path, ds$factors)
  cat(sprintf("  %-17s %5d rows, %d columns  (%s)\n", nm, nrow(DATA[[nm]]), ncol(DATA[[nm]]), ds$path))
}

# ---------------------------------------------------------------------------------
# 2. the model suite (names are the contract with the Python tests)
# ---------------------------------------------------------------------------------

CBPP <- "cbind(incidence, size - incidence) ~ period + (1 | herd)"
VERB <- "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 | item)"
SUITE <- list(
  list(name = "cbpp_binomial", dataset = "cbpp", formula = CBPP, family = "binomial"),
  list(name = "cbpp_binomial_agq9", dataset = "cbpp", formula = CBPP, family = "binomial", nAGQ = 9),
  # the same model with the proportion as response and the number of trials as weights
  list(name = "cbpp_prop_weights", dataset = "cbpp", formula = "incidence/size ~ period + (1 | herd)",
       family = "binomial", weights = "size"),
  list(name = "cbpp_probit", dataset = "cbpp", formula = CBPP, family = 'binomial(link = "probit")'),
  list(name = "cbpp_cloglog", dataset = "cbpp", formula = CBPP, family = 'binomial(link = "cloglog")'),
  # lme4's ?grouseticks model on the centred height
  list(name = "grouseticks_poisson", dataset = "grouseticks", family = "poisson",
       formula = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)"),
  # ... and verbatim on the raw height (lme4 warns: max|grad| and "Rescale variables?")
  list(name = "grouseticks_poisson_raw", dataset = "grouseticks", family = "poisson",
       formula = "TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)"),
  # broods nested in locations
  list(name = "grouseticks_nested", dataset = "grouseticks", family = "poisson",
       formula = "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD)"),
  list(name = "verbagg_binomial", dataset = "VerbAgg", formula = VERB, family = "binomial"),
  # a correlated vector term (lme4 warns: max|grad| 0.011; corr near -1)
  list(name = "verbagg_corr", dataset = "VerbAgg", family = "binomial",
       formula = "r2 ~ Anger + Gender + btype + situ + (1 | id) + (1 + Gender | item)"),
  list(name = "poisson_offset", dataset = "poisson_exposure", family = "poisson",
       formula = "y ~ x + offset(log(exposure)) + (1 | g)")
)

# ---------------------------------------------------------------------------------
# 3. fit and write
# ---------------------------------------------------------------------------------

glmer_call <- function(spec, control = NULL, start = NULL) {
  args <- list(as.formula(spec$formula), data = as.name(spec$dataset), family = str2lang(spec$family))
  if (!is.null(spec$nAGQ)) args$nAGQ <- spec$nAGQ
  if (!is.null(spec$weights)) args$weights <- as.name(spec$weights)
  if (!is.null(control)) args$control <- control
  if (!is.null(start)) args$start <- start
  as.call(c(quote(lme4::glmer), args))
}

NLOPT_TIGHT <- list(xtol_rel = 1e-12, xtol_abs = 1e-12, ftol_abs = 1e-12, ftol_rel = 1e-14, maxeval = 1e5)

# lme4's best optimum: the default fit; minqa BOBYQA for both stages with maxfun 1e5
# ("bobyqa"); NLopt BOBYQA with tight tolerances and tolPwrss 1e-10 ("nloptwrap_tight");
# the latter restarted from the default fit's theta and fixef ("nloptwrap_restart"). The
# highest logLik wins.
tight_refit <- function(spec, m, env) {
  th <- getME(m, "theta")
  lower <- getME(m, "lower")
  th <- ifelse(is.finite(lower) & th - lower < 1e-4, lower + 1e-4, th)  # inside the bounds
  refit <- function(control, start = NULL)
    tryCatch(capture(eval(glmer_call(spec, control = control, start = start), env)), error = function(e) NULL)
  tries <- list(
    bobyqa = refit(glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5))),
    nloptwrap_tight = refit(glmerControl(optimizer = "nloptwrap", optCtrl = NLOPT_TIGHT, tolPwrss = 1e-10)),
    nloptwrap_restart = refit(glmerControl(optimizer = "nloptwrap", optCtrl = NLOPT_TIGHT, tolPwrss = 1e-10),
                              list(theta = unname(th), fixef = unname(fixef(m)))))
  best <- list(method = "default", m = m, warnings = character())
  for (nm in names(tries)) {
    t <- tries[[nm]]
    if (!is.null(t) && as.numeric(logLik(t$value)) > as.numeric(logLik(best$m)) + 1e-10)
      best <- list(method = nm, m = t$value, warnings = unique(c(t$messages, t$warnings)))
  }
  b <- best$m
  list(logLik_tight = as.numeric(logLik(b)), deviance_tight = deviance(b),
       theta_tight = named_list(getME(b, "theta")), fixef_tight = named_list(fixef(b)),
       se_tight = named_list(sqrt(diag(as.matrix(vcov(b))))), tight_method = best$method,
       tight_gain = as.numeric(logLik(b)) - as.numeric(logLik(m)), tight_warnings = I(best$warnings))
}

fit_model <- function(spec) {
  t0 <- Sys.time()
  data <- DATA[[spec$dataset]]
  env <- list2env(setNames(list(data), spec$dataset), parent = globalenv())
  fit <- capture(eval(glmer_call(spec), env))
  m <- fit$value
  ll <- logLik(m)
  fam <- family(m)
  cf <- coef(summary(m))
  resid_types <- c("deviance", "pearson", "response", "working")
  ds <- DATASETS[[spec$dataset]]
  out <- list(
    name = spec$name, dataset = spec$dataset, data_path = ds$path, factors = I(ds$factors),
    formula = spec$formula, family = fam$family, link = fam$link,
    nAGQ = if (is.null(spec$nAGQ)) 1L else as.integer(spec$nAGQ), weights = spec$weights,
    bars = I(vapply(findbars(expandDoubleVerts(as.formula(spec$formula))),
                    function(b) paste(deparse(b), collapse = ""), "")),
    nobs = nobs(m), ngrps = as.list(ngrps(m)), df = attr(ll, "df"), df_resid = df.residual(m),
    logLik = as.numeric(ll), AIC = AIC(m), BIC = BIC(m), deviance = deviance(m),
    minus2logLik = -2 * as.numeric(ll),
    devresid_sum = sum(residuals(m, type = "deviance")^2),
    devcomp = as.list(m@devcomp$cmp),
    fixef = named_list(fixef(m)),
    se = named_list(sqrt(diag(as.matrix(vcov(m))))),
    zvalue = named_list(cf[, "z value"]), pvalue = named_list(cf[, "Pr(>|z|)"]),
    vcov = rows_of(as.matrix(vcov(m))), vcov_names = I(colnames(vcov(m))),
    theta = named_list(getME(m, "theta")),
    varcorr = varcorr_json(m),
    ranef = ranef_json(m),
    fitted_head = head_num(fitted(m)),
    residuals_head = lapply(setNames(nm = resid_types), function(t) head_num(residuals(m, type = t))),
    predict_head = list(
      link = head_num(predict(m, type = "link")),
      response = head_num(predict(m, type = "response")),
      link_fixed = head_num(predict(m, re.form = NA, type = "link")),
      response_fixed = head_num(predict(m, re.form = NA, type = "response"))),
    isSingular = isSingular(m),
    messages = I(fit$messages), warnings = I(fit$warnings),
    summary = paste(capture.output(print(summary(m))), collapse = "\n"),
    optimizer = optimizer_json(m)
  )
  out <- c(out, tight_refit(spec, m, env))
  write_fixture(out, file.path(FIX_DIR, paste0(spec$name, ".json")))
  note <- c(if (isSingular(m)) "singular", fit$messages, fit$warnings,
            if (out$tight_gain > 1e-6) sprintf("tight refit gains %.3g (%s)", out$tight_gain, out$tight_method))
  cat(sprintf("  %-24s logLik %14.6f  %5.1fs %s\n", spec$name, as.numeric(ll),
              as.numeric(difftime(Sys.time(), t0, units = "secs")), paste(note, collapse = "; ")))
  invisible(out)
}

unlink(list.files(FIX_DIR, pattern = "\\.json$", full.names = TRUE))
cat("fitting", length(SUITE), "glmer models\n")
for (spec in SUITE) fit_model(spec)

write_fixture(session_info(c("lme4", "Matrix", "jsonlite", "minqa", "nloptr"),
                           vapply(SUITE, function(s) s$name, ""), names(DATASETS)),
              file.path(FIX_DIR, "_session.json"))
cat(sprintf("done in %.0fs\n", as.numeric(difftime(Sys.time(), t_start, units = "secs"))))
