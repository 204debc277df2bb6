# make_glmer_nb_fixtures.R -- lme4::glmer.nb reference fits for lme2sm's glmer_nb tests.
#
# Run from the project root (under a minute):
#
#   Rscript tools/make_glmer_nb_fixtures.R
#
# Reads lme2sm/datasets/grouseticks.csv (written by tools/make_glmer_fixtures.R) and
# writes
#   tests/fixtures/glmer_nb/data/epil.csv      MASS::epil (y, trt, base, age, V4, subject,
#                                              period, lbase, lage)
#   tests/fixtures/glmer_nb/data/nb_slope.csv  simulated NB counts (set.seed below): 40
#                                              groups g x 10 rows, exposure, covariate x
#   tests/fixtures/glmer_nb/<name>.json        one glmer.nb fit per model of SUITE
#
# JSON keys: name, data_path, factors, formula, family (m@resp$family$family), nb_theta
# (getME(m, "glmer.nb.theta")), nobs, df (attr(logLik(m), "df")), logLik, AIC, BIC,
# deviance, fixef, se, theta (getME(m, "theta")), varcorr, summary, warnings, and the same
# from a tight fit (see fit_nb: R's optimize over log theta to 1e-8, each point a fresh
# glmer fit with PIRLS to 1e-12 and BOBYQA to 1e-9): logLik_tight, nb_theta_tight,
# fixef_tight, se_tight, theta_tight, varcorr_tight, tolPwrss_tight. lme4's default stops the theta search at tol = 5e-5 on log(theta), and
# PIRLS at tolPwrss = 1e-7 (the standard errors move by up to ~1 %); lme2sm's tests
# compare with the tight refit.

suppressPackageStartupMessages({library(lme4); library(MASS)})
source("tools/fixture_helpers.R")

FIX_DIR <- "tests/fixtures/glmer_nb"
FIX_DATA <- file.path(FIX_DIR, "data")
dir.create(FIX_DATA, showWarnings = FALSE, recursive = TRUE)

ep <- plain(MASS::epil)
write_csv_data(ep, file.path(FIX_DATA, "epil.csv"))

# NB counts: log E[y] = log(exposure) + 0.5 + 0.4 x + b0_g + b1_g x, sd(b0) = 0.5,
# sd(b1) = 0.3, cor = 0.3, NB theta = 2.5
set.seed(20261125)
n_g <- 40; n_per <- 10
g <- rep(sprintf("g%02d", seq_len(n_g)), each = n_per)
S <- matrix(c(0.25, 0.3 * 0.5 * 0.3, 0.3 * 0.5 * 0.3, 0.09), 2)
B <- MASS::mvrnorm(n_g, c(0, 0), S)
x <- round(rnorm(n_g * n_per), 3)
exposure <- round(runif(n_g * n_per, 0.5, 3), 3)
gi <- as.integer(factor(g))
mu <- exposure * exp(0.5 + 0.4 * x + B[gi, 1] + B[gi, 2] * x)
y <- MASS::rnegbin(n_g * n_per, mu, theta = 2.5)
write_csv_data(data.frame(y = y, x = x, exposure = exposure, g = g, stringsAsFactors = FALSE),
               file.path(FIX_DATA, "nb_slope.csv"))

SUITE <- list(
  list(name = "grouseticks_nb", data_path = "lme2sm/datasets/grouseticks.csv",
       factors = c("INDEX", "BROOD", "YEAR", "LOCATION"),
       formula = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | LOCATION)"),
  list(name = "epil_nb", data_path = file.path(FIX_DATA, "epil.csv"),
       factors = c("trt", "subject"),
       formula = "y ~ lbase * trt + lage + V4 + (1 | subject)"),
  list(name = "nb_slope", data_path = file.path(FIX_DATA, "nb_slope.csv"),
       factors = "g",
       formula = "y ~ x + offset(log(exposure)) + (1 + x | g)")
)

# One glmer fit at a fixed NB theta, PIRLS to 1e-12 where it converges (lme4's
# pwrssUpdate can fail to reach it: then 1e-10, 1e-9), BOBYQA in both stages to 1e-9.
fit_at <- function(f, d, theta) {
  for (tp in c(1e-12, 1e-10, 1e-9)) {
    ctrl <- glmerControl(optimizer = "bobyqa", tolPwrss = tp,
                         optCtrl = list(rhoend = 1e-9, maxfun = 1e5))
    m <- tryCatch(glmer(f, data = d, family = negative.binomial(theta), control = ctrl),
                  error = function(e) NULL)
    if (!is.null(m)) return(m)
  }
  stop("no tight fit converged at theta = ", theta)
}

# The default fit, or the tight one: glmer.nb's own search reuses refit(), whose PIRLS
# fails at tight tolerances and whose theta tolerance (tol = ...) reaches glmer() in lme4
# 1.1-31; the tight search is R's optimize() over log(theta) of fresh fits, tol 1e-8.
fit_nb <- function(f, d, tight, m_default = NULL) {
  if (!tight) return(glmer.nb(f, data = d))
  th <- getME(m_default, "glmer.nb.theta")
  opt <- optimize(function(lt) -2 * as.numeric(logLik(fit_at(f, d, exp(lt)))),
                  interval = log(th) + c(-0.2, 0.2), tol = 1e-8)
  fit_at(f, d, exp(opt$minimum))
}

describe <- function(m, suffix = "") {
  out <- list(nb_theta = environment(m@resp$family$aic)[[".Theta"]], logLik = as.numeric(logLik(m)),
              fixef = named_list(fixef(m)),
              se = named_list(sqrt(diag(as.matrix(vcov(m))))),
              theta = named_list(getME(m, "theta")), varcorr = varcorr_json(m))
  if (nzchar(suffix)) names(out) <- paste0(names(out), suffix)
  out
}

for (spec in SUITE) {
  d <- read_csv_data(spec$data_path, spec$factors)
  f <- as.formula(spec$formula)
  r <- capture(fit_nb(f, d, FALSE))
  m <- r$value
  rt <- capture(fit_nb(f, d, TRUE, m))
  ll <- logLik(m)
  res <- c(list(name = spec$name, data_path = spec$data_path, factors = I(spec$factors),
                formula = spec$formula, family = m@resp$family$family,
                nobs = nobs(m), df = attr(ll, "df"), AIC = AIC(m), BIC = BIC(m),
                deviance = deviance(m)),
           describe(m),
           list(summary = paste(capture.output(print(summary(m))), collapse = "\n"),
                warnings = I(r$warnings), warnings_tight = I(rt$warnings),
                tolPwrss_tight = rt$value@devcomp$cmp[["tolPwrss"]],
                lme4 = as.character(packageVersion("lme4"))),
           describe(rt$value, "_tight"))
  writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
             file.path(FIX_DIR, paste0(spec$name, ".json")))
  cat(sprintf("%-15s theta %.6f (tight %.6f)  logLik %.6f (tight %.6f)\n", spec$name,
              res$nb_theta, res$nb_theta_tight, res$logLik, res$logLik_tight))
}
