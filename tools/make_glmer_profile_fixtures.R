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
# smaller), confint_90 (level = 0.9, default profile), logLik.

suppressPackageStartupMessages(library(lme4))
source("tools/fixture_helpers.R")

FIX_DIR <- "tests/fixtures/glmer_profile"
dir.create(FIX_DIR, showWarnings = FALSE, recursive = TRUE)

SUITE <- list(
  list(name = "cbpp_binomial", data_path = "lme2sm/datasets/cbpp.csv",
       factors = c("herd", "period"), family = "binomial",
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  list(name = "poisson_offset", data_path = "tests/fixtures/glmer/data/poisson_exposure.csv",
       factors = "g", family = "poisson",
       formula = "y ~ x + offset(log(exposure)) + (1 | g)")
)

table_json <- function(ci) list(lower = I(unname(ci[, 1])), upper = I(unname(ci[, 2])))

for (spec in SUITE) {
  d <- read_csv_data(spec$data_path, spec$factors)
  m <- glmer(as.formula(spec$formula), data = d, family = get(spec$family))
  ci <- confint(m, oldNames = FALSE)
  old <- confint(m)
  fine <- confint(profile(m, delta = qnorm(0.975) / 64, signames = FALSE))
  ci90 <- confint(m, level = 0.9, oldNames = FALSE)
  res <- list(name = spec$name, data_path = spec$data_path, factors = I(spec$factors),
              formula = spec$formula, family = spec$family,
              rows = I(rownames(ci)), old_rows = I(rownames(old)), level = 0.95,
              confint = table_json(ci), confint_fine = table_json(fine[rownames(ci), ]),
              confint_90 = table_json(ci90), logLik = as.numeric(logLik(m)),
              lme4 = as.character(packageVersion("lme4")))
  writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE),
             file.path(FIX_DIR, paste0(spec$name, ".json")))
  cat(spec$name, "\n"); print(ci); print(fine)
}
