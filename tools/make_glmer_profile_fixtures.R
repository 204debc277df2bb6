# make_glmer_profile_fixtures.R -- lme4's profile confidence intervals of glmer fits.
#
# Run from the project root after tools/make_glmer_fixtures.R (a minute or two):
#
#   Rscript tools/make_glmer_profile_fixtures.R
#
# Writes tests/fixtures/glmer_profile/<name>.json for each model of SUITE, with keys
# name, data_path, factors, formula, family, rows (confint(m, oldNames = FALSE) row
# names), old_rows (lme4's default names, .sig01 ...), level, confint (lme4's default:
# confint(m), method = "profile"; the profile's spline interpolates zeta at points
# delta = qnorm(0.975) / 8 apart), confint_fine (the same from profile(m, delta =
# qnorm(0.975) / 64): eight times more profile points, so the spline's own error is far
# smaller; empty ({}) for poisson_slope, whose fine profile takes many minutes), confint_90
# (level = 0.9, default profile), logLik. Also writes
# tests/fixtures/glmer_profile/data/poisson_slope.csv (simulated, set.seed below).

suppressPackageStartupMessages(library(lme4))
source("tools/fixture_helpers.R")

FIX_DIR <- "tests/fixtures/glmer_profile"
dir.create(file.path(FIX_DIR, "data"), showWarnings = FALSE, recursive = TRUE)

# Poisson counts with a correlated random slope: log E[y] = 0.8 + 0.4 x + b0_g + b1_g x,
# sd(b0) = 0.5, sd(b1) = 0.4, cor = 0.3; 40 groups g01..g40 of 10 rows
set.seed(20261126)
n_g <- 40; n_per <- 10
g <- rep(sprintf("g%02d", seq_len(n_g)), each = n_per)
S <- matrix(c(0.25, 0.3 * 0.5 * 0.4, 0.3 * 0.5 * 0.4, 0.16), 2)
B <- MASS::mvrnorm(n_g, c(0, 0), S)
x <- round(rnorm(n_g * n_per), 3)
gi <- as.integer(factor(g))
y <- rpois(n_g * n_per, exp(0.8 + 0.4 * x + B[gi, 1] + B[gi, 2] * x))
write_csv_data(data.frame(y = y, x = x, g = g), file.path(FIX_DIR, "data", "poisson_slope.csv"))

SUITE <- list(
  list(name = "cbpp_binomial", data_path = "lme2sm/datasets/cbpp.csv",
       factors = c("herd", "period"), family = "binomial",
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  list(name = "poisson_offset", data_path = "tests/fixtures/glmer/data/poisson_exposure.csv",
       factors = "g", family = "poisson",
       formula = "y ~ x + offset(log(exposure)) + (1 | g)"),
  list(name = "poisson_slope", data_path = file.path(FIX_DIR, "data", "poisson_slope.csv"),
       factors = "g", family = "poisson", formula = "y ~ x + (1 + x | g)", fine = FALSE)
)

table_json <- function(ci) list(lower = I(unname(ci[, 1])), upper = I(unname(ci[, 2])))

for (spec in SUITE) {
  d <- read_csv_data(spec$data_path, spec$factors)
  m <- glmer(as.formula(spec$formula), data = d, family = get(spec$family))
  ci <- confint(m, oldNames = FALSE)
  old <- confint(m)
  fine <- if (isFALSE(spec$fine)) NULL else
    confint(profile(m, delta = qnorm(0.975) / 64, signames = FALSE))
  ci90 <- confint(m, level = 0.9, oldNames = FALSE)
  res <- list(name = spec$name, data_path = spec$data_path, factors = I(spec$factors),
              formula = spec$formula, family = spec$family,
              rows = I(rownames(ci)), old_rows = I(rownames(old)), level = 0.95,
              confint = table_json(ci), confint_fine = if (is.null(fine)) NULL else table_json(fine[rownames(ci), ]),
              confint_90 = table_json(ci90), logLik = as.numeric(logLik(m)),
              lme4 = as.character(packageVersion("lme4")))
  writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE),
             file.path(FIX_DIR, paste0(spec$name, ".json")))
  cat(spec$name, "\n"); print(ci); print(fine)
}
