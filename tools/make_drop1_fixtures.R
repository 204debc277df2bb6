# make_drop1_fixtures.R -- reference tables for drop1() on lmer and glmer fits (issue 22):
# lme4's drop1.merMod (test = "none": AIC of each single-term deletion, the fits refitted
# by ML as lme4's extractAIC does; test = "Chisq": LRT and Pr(Chi)) and, for lmer fits,
# lmerTest's drop1.lmerModLmerTest (F tests of the marginal terms with Satterthwaite's and
# Kenward-Roger's denominator df).
#
# Run from the project root (about half a minute):
#
#   apt-get install -y r-base-core r-cran-lme4 r-cran-lmertest r-cran-pbkrtest r-cran-jsonlite
#   nice -n 5 Rscript tools/make_drop1_fixtures.R
#
# Writes tests/fixtures/drop1/<name>.json and tests/fixtures/drop1/_session.json.
#
# Keys: name, kind ("lmer"/"glmer"), dataset, data_path, factors, formula, REML (lmer),
# family, link (glmer), scope (null: drop.scope's marginal terms), and
#   none, chisq: lme4's drop1(m, test = "none" / "Chisq") as {rows, npar, AIC[, LRT,
#     Pr(Chi)]} (the "<none>" row first; NA -> null), at lme4's default fit;
#   none_tight, chisq_tight: the same with the model (and so every deletion, through
#     update()) fitted with tight optimiser tolerances (NLopt BOBYQA at 1e-12, glmer's PIRLS
#     at tolPwrss = 1e-12): lme4's best optimum, which lme2sm's tests compare with;
#   logLik_ml (the full model's ML logLik, tight fit), warnings;
#   F_satterthwaite, F_kenward_roger (lmer; KR for REML fits only): lmerTest's drop1(m, ddf = ...) as {rows, Sum Sq,
#     Mean Sq, NumDF, DenDF, F value, Pr(>F)}, at the tight fit.
#
# Every fit reads its data back from the CSV (factor levels sorted in the C locale).

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest)
})
source("tools/fixture_helpers.R")

DATA_DIR <- "lme2sm/datasets"
OUT <- "tests/fixtures/drop1"
NLOPT_TIGHT <- list(xtol_rel = 1e-12, xtol_abs = 1e-12, ftol_abs = 1e-12, ftol_rel = 1e-14,
                    maxeval = 1e5)

DATASETS <- list(
  sleepstudy = list(path = file.path(DATA_DIR, "sleepstudy.csv"), factors = "Subject"),
  Oats = list(path = file.path(DATA_DIR, "Oats.csv"), factors = c("Block", "Variety")),
  Orthodont = list(path = file.path(DATA_DIR, "Orthodont.csv"), factors = c("Subject", "Sex")),
  cake = list(path = file.path(DATA_DIR, "cake.csv"), factors = c("replicate", "recipe")),
  cbpp = list(path = file.path(DATA_DIR, "cbpp.csv"), factors = c("herd", "period")),
  grouseticks = list(path = file.path(DATA_DIR, "grouseticks.csv"),
                     factors = c("INDEX", "BROOD", "YEAR", "LOCATION"))
)
DATA <- lapply(DATASETS, function(ds) read_csv_data(ds$path, ds$factors))

LMER <- list(
  list(name = "sleepstudy_corr", dataset = "sleepstudy", REML = TRUE,
       formula = "Reaction ~ Days + (Days | Subject)"),
  list(name = "sleepstudy_ml", dataset = "sleepstudy", REML = FALSE,
       formula = "Reaction ~ Days + (1 | Subject)"),
  list(name = "cake_interaction", dataset = "cake", REML = TRUE,
       formula = "angle ~ recipe * temp + (1 | replicate)"),
  list(name = "cake_quadratic", dataset = "cake", REML = TRUE,
       formula = "angle ~ recipe * temp + I(temp^2) + (1 | replicate)"),
  list(name = "oats_additive", dataset = "Oats", REML = TRUE,
       formula = "yield ~ nitro + Variety + (1 | Block/Variety)"),
  list(name = "oats_scope", dataset = "Oats", REML = FALSE, scope = "Variety",
       formula = "yield ~ nitro + Variety + (1 | Block/Variety)"),
  list(name = "orthodont_interaction", dataset = "Orthodont", REML = TRUE,
       formula = "distance ~ age * Sex + (age | Subject)")
)
GLMER <- list(
  list(name = "cbpp_period", dataset = "cbpp", family = "binomial", link = "logit",
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  list(name = "cbpp_size", dataset = "cbpp", family = "binomial", link = "logit",
       formula = "cbind(incidence, size - incidence) ~ period + size + (1 | herd)"),
  list(name = "grouseticks_interaction", dataset = "grouseticks", family = "poisson",
       link = "log", formula = "TICKS ~ YEAR * cHEIGHT + (1 | LOCATION)")
)

na_null <- function(x) lapply(as.numeric(x), function(v) if (is.na(v)) NULL else v)

table_json <- function(tab) {
  out <- list(rows = I(rownames(tab)))
  for (col in names(tab)) out[[col]] <- I(na_null(tab[[col]]))
  out
}

drop1_both <- function(m, scope) {
  run <- function(test) {
    if (is.null(scope)) drop1(m, test = test) else drop1(m, scope = scope, test = test)
  }
  if (inherits(m, "lmerModLmerTest")) {
    run <- function(test) {
      if (is.null(scope)) drop1(m, ddf = "lme4", test = test)
      else drop1(m, scope = scope, ddf = "lme4", test = test)
    }
  }
  list(none = table_json(run("none")), chisq = table_json(run("Chisq")))
}

fit_lmer <- function(spec, control) {
  d <- DATA[[spec$dataset]]
  eval(bquote(lmerTest::lmer(.(as.formula(spec$formula)), data = d, REML = .(spec$REML),
                             control = .(control))))
}

fit_glmer <- function(spec, control) {
  d <- DATA[[spec$dataset]]
  fam <- get(spec$family)(link = spec$link)
  eval(bquote(glmer(.(as.formula(spec$formula)), data = d, family = .(fam),
                    control = .(control))))
}

fixture <- function(spec, kind) {
  ds <- DATASETS[[spec$dataset]]
  scope <- spec$scope
  if (kind == "lmer") {
    fit <- function(ctrl) fit_lmer(spec, ctrl)
    default <- capture(fit(lmerControl()))
    tight <- capture(fit(lmerControl(optimizer = "nloptwrap", optCtrl = NLOPT_TIGHT)))
  } else {
    fit <- function(ctrl) fit_glmer(spec, ctrl)
    default <- capture(fit(glmerControl()))
    tight <- capture(fit(glmerControl(optimizer = "nloptwrap", optCtrl = NLOPT_TIGHT,
                                      tolPwrss = 1e-12)))
  }
  d1 <- capture(drop1_both(default$value, scope))
  d1t <- capture(drop1_both(tight$value, scope))
  out <- list(name = spec$name, kind = kind, dataset = spec$dataset, data_path = ds$path,
              factors = I(ds$factors), formula = spec$formula,
              REML = if (kind == "lmer") spec$REML else NULL,
              family = spec$family, link = spec$link,
              scope = if (is.null(scope)) NULL else I(scope),
              none = d1$value$none, chisq = d1$value$chisq,
              none_tight = d1t$value$none, chisq_tight = d1t$value$chisq,
              logLik_ml = as.numeric(logLik(refitML(tight$value))),
              warnings = I(unique(c(default$warnings, tight$warnings, d1$warnings, d1t$warnings))))
  if (kind == "lmer") {
    f_tab <- function(ddf) {
      tab <- if (is.null(scope)) drop1(tight$value, ddf = ddf)
             else drop1(tight$value, scope = scope, ddf = ddf)
      table_json(as.data.frame(tab))
    }
    out$F_satterthwaite <- f_tab("Satterthwaite")
    if (spec$REML) out$F_kenward_roger <- f_tab("Kenward-Roger")  # REML fits only
  }
  out
}

done <- character()
for (spec in LMER) {
  write_fixture(fixture(spec, "lmer"), file.path(OUT, paste0(spec$name, ".json")))
  done <- c(done, spec$name); cat(spec$name, "\n")
}
for (spec in GLMER) {
  write_fixture(fixture(spec, "glmer"), file.path(OUT, paste0(spec$name, ".json")))
  done <- c(done, spec$name); cat(spec$name, "\n")
}
write_fixture(session_info(c("lme4", "lmerTest", "pbkrtest", "Matrix", "jsonlite"), done,
                           unique(vapply(c(LMER, GLMER), function(s) s$dataset, ""))),
              file.path(OUT, "_session.json"))
