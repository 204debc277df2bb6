# make_kr_fixtures.R -- Kenward-Roger, Satterthwaite and emmeans reference numbers for
# lme2sm's inference tests (lmerTest, pbkrtest, emmeans on lme4 fits).
#
# Run from the project root (well under a minute):
#
#   apt-get install -y r-base-core r-cran-lme4 r-cran-lmertest r-cran-pbkrtest \
#       r-cran-emmeans r-cran-jsonlite
#   Rscript tools/make_kr_fixtures.R
#
# Writes
#   tests/fixtures/kr/data/Oats_nitrof.csv      nlme::Oats with nitro as a string factor
#                                               ("0", "0.2", "0.4", "0.6")
#   tests/fixtures/kr/data/sleepstudy_unbal.csv sleepstudy without rows 1, 5, 20, 33, 34,
#                                               80, 100, 101, 150 (1-based, of
#                                               lme2sm/datasets/sleepstudy.csv), plus phase =
#                                               "D0-2" / "D3-5" / "D6-9" (Days grouped)
#   tests/fixtures/kr/data/cake_tf.csv          lme2sm/datasets/cake.csv plus temperature =
#                                               temp as a string factor ("175" ... "225")
#   tests/fixtures/kr/<name>.json               one fixture per model of SUITE below
#   tests/fixtures/kr/_session.json             R / package versions, model names
# (Machines and Orthodont are read from lme2sm/datasets.) Every dataset is read back from
# its CSV with factor levels sorted in the C locale (as Python sorts strings); all fits are
# REML with lme4's default optimizer.
#
# Fixture JSON keys: name, dataset, data_path, factors, formula, REML, nobs, logLik,
# REMLcrit, theta (named), sigma, fixef, vcov + vcov_names (lme4's vcov), vcov_adj
# (pbkrtest::vcovAdj, Kenward-Roger adjusted; same names), coef_kr and coef_satterthwaite
# (coefficient name -> {estimate, se, df, t, p}; lmerTest summary(m, ddf=...)), anova_kr and
# anova_satterthwaite (lmerTest anova(m, type = 3, ddf = ...) rows {term, SumSq, MeanSq,
# NumDF, DenDF, F, p}), emmeans (a list, one entry per emmeans call: label, specs (the
# formula given to emmeans), by (by-variables or null), at (null or {variable: values}),
# lmer_df ("kenward-roger" or "satterthwaite"), messages, table (rows of
# summary(emmeans(...)): the factor / covariate / by columns, emmean, SE, df, lower.CL,
# upper.CL; confidence level 0.95), pairs ({tukey, bonferroni, holm, none}: rows of
# summary(pairs(emm), adjust = ...): contrast, by columns, estimate, SE, df, t.ratio,
# p.value; the contrasts are "first - second" as emmeans writes them)), messages, warnings
# (of the lme4 fit), isSingular.

suppressPackageStartupMessages({
  library(lme4)
  library(lmerTest, exclude = "lmer")
  library(pbkrtest)
  library(emmeans)
})
source("tools/fixture_helpers.R")

DATA_DIR <- "lme2sm/datasets"
FIX_DIR <- "tests/fixtures/kr"
FIX_DATA_DIR <- file.path(FIX_DIR, "data")
t_start <- Sys.time()

# ---------------------------------------------------------------------------------
# 1. datasets
# ---------------------------------------------------------------------------------

BUNDLED <- list(
  sleepstudy = c("Subject"), cake = c("replicate", "recipe"), Oats = c("Block", "Variety"),
  Machines = c("Worker", "Machine"), Orthodont = c("Subject", "Sex"))
bundled <- function(name) read_csv_data(file.path(DATA_DIR, paste0(name, ".csv")), BUNDLED[[name]])

oats <- plain(bundled("Oats"))
oats$nitro <- as.character(oats$nitro)
SLEEP_DROP <- c(1, 5, 20, 33, 34, 80, 100, 101, 150)
sleep <- plain(bundled("sleepstudy"))[-SLEEP_DROP, ]
sleep$phase <- ifelse(sleep$Days <= 2, "D0-2", ifelse(sleep$Days <= 5, "D3-5", "D6-9"))
cake <- plain(bundled("cake"))
cake$temperature <- as.character(cake$temp)

DATASETS <- list(
  Oats_nitrof = list(df = oats, path = file.path(FIX_DATA_DIR, "Oats_nitrof.csv"),
                     factors = c("Block", "Variety", "nitro")),
  sleepstudy_unbal = list(df = sleep, path = file.path(FIX_DATA_DIR, "sleepstudy_unbal.csv"),
                          factors = c("Subject", "phase")),
  cake_tf = list(df = cake, path = file.path(FIX_DATA_DIR, "cake_tf.csv"),
                 factors = c("replicate", "recipe", "temperature")),
  Machines = list(path = file.path(DATA_DIR, "Machines.csv"), factors = BUNDLED$Machines),
  Orthodont = list(path = file.path(DATA_DIR, "Orthodont.csv"), factors = BUNDLED$Orthodont)
)
DATA <- list()
for (nm in names(DATASETS)) {
  ds <- DATASETS[[nm]]
  if (!is.null(ds$df)) write_csv_data(ds$df, ds$path)
  DATA[[nm]] <- read_csv_data(ds$path, ds$factors)
  cat(sprintf("  %-17s %5d rows, %d columns  (%s)\n", nm, nrow(DATA[[nm]]), ncol(DATA[[nm]]), ds$path))
}

# ---------------------------------------------------------------------------------
# 2. the model suite; emm = the emmeans calls (specs, optional at), each with pairs
# ---------------------------------------------------------------------------------

SUITE <- list(
  list(name = "oats", dataset = "Oats_nitrof", formula = "yield ~ Variety * nitro + (1 | Block/Variety)",
       emm = list(list(label = "nitro", specs = "~ nitro"),
                  list(label = "Variety_by_nitro", specs = "~ Variety | nitro"),
                  list(label = "nitro_satterthwaite", specs = "~ nitro", lmer_df = "satterthwaite"))),
  list(name = "machines", dataset = "Machines", formula = "score ~ Machine + (1 | Worker/Machine)",
       emm = list(list(label = "Machine", specs = "~ Machine"),
                  list(label = "Machine_satterthwaite", specs = "~ Machine", lmer_df = "satterthwaite"))),
  list(name = "sleepstudy_unbal", dataset = "sleepstudy_unbal", formula = "Reaction ~ Days + (Days | Subject)",
       emm = list(list(label = "Days_at", specs = "~ Days", at = list(Days = c(0, 3, 6, 9))))),
  list(name = "sleepstudy_unbal_phase", dataset = "sleepstudy_unbal", formula = "Reaction ~ phase + (1 | Subject)",
       emm = list(list(label = "phase", specs = "~ phase"),
                  list(label = "phase_satterthwaite", specs = "~ phase", lmer_df = "satterthwaite"))),
  list(name = "cake", dataset = "cake_tf", formula = "angle ~ recipe * temperature + (1 | recipe:replicate)",
       emm = list(list(label = "recipe", specs = "~ recipe"),
                  list(label = "recipe_by_temperature", specs = "~ recipe | temperature"),
                  list(label = "recipe_satterthwaite", specs = "~ recipe", lmer_df = "satterthwaite"))),
  list(name = "orthodont", dataset = "Orthodont", formula = "distance ~ age * Sex + (age | Subject)",
       emm = list(list(label = "Sex", specs = "~ Sex"),
                  list(label = "Sex_by_age", specs = "~ Sex | age", at = list(age = c(8, 14)))))
)

# ---------------------------------------------------------------------------------
# 3. fit and write
# ---------------------------------------------------------------------------------

coef_json <- function(mt, ddf) {
  cf <- coef(summary(mt, ddf = ddf))
  out <- lapply(rownames(cf), function(r) list(
    estimate = cf[r, "Estimate"], se = cf[r, "Std. Error"], df = cf[r, "df"],
    t = cf[r, "t value"], p = cf[r, "Pr(>|t|)"]))
  names(out) <- rownames(cf)
  out
}

anova_json <- function(mt, ddf) {
  a <- anova(mt, type = 3, ddf = ddf)
  lapply(seq_len(nrow(a)), function(i) list(
    term = rownames(a)[i], SumSq = a[i, "Sum Sq"], MeanSq = a[i, "Mean Sq"],
    NumDF = a[i, "NumDF"], DenDF = a[i, "DenDF"], F = a[i, "F value"], p = a[i, "Pr(>F)"]))
}

emmeans_json <- function(m, e) {
  lmer_df <- if (is.null(e$lmer_df)) "kenward-roger" else e$lmer_df
  args <- list(m, as.formula(e$specs), lmer.df = lmer_df)
  if (!is.null(e$at)) args$at <- e$at
  got <- capture(do.call(emmeans::emmeans, args))
  emm <- got$value
  by <- emm@misc$by.vars
  pairs_tab <- lapply(setNames(nm = c("tukey", "bonferroni", "holm", "none")), function(adj) {
    p <- capture(as.data.frame(summary(pairs(emm), adjust = adj)))
    df_rows(p$value)
  })
  list(label = e$label, specs = e$specs, by = if (is.null(by)) NULL else I(by),
       at = e$at, lmer_df = lmer_df, messages = I(unique(c(got$messages, got$warnings))),
       table = df_rows(as.data.frame(summary(emm))), pairs = pairs_tab)
}

fit_model <- function(spec) {
  t0 <- Sys.time()
  data <- DATA[[spec$dataset]]
  env <- list2env(setNames(list(data), spec$dataset), parent = globalenv())
  f <- as.formula(spec$formula, env = env)  # emmeans' Satterthwaite refits from the call
  fit <- capture(eval(bquote(lmerTest::lmer(.(f), data = .(as.name(spec$dataset)))), env))
  mt <- fit$value                # lmerModLmerTest (an lmerMod underneath)
  m <- as(mt, "lmerMod")
  ll <- logLik(m)
  va <- as.matrix(pbkrtest::vcovAdj(m))
  ds <- DATASETS[[spec$dataset]]
  out <- list(
    name = spec$name, dataset = spec$dataset, data_path = ds$path, factors = I(ds$factors),
    formula = spec$formula, REML = TRUE, nobs = nobs(m), logLik = as.numeric(ll),
    REMLcrit = REMLcrit(m), theta = named_list(getME(m, "theta")), sigma = sigma(m),
    fixef = named_list(fixef(m)),
    vcov = rows_of(as.matrix(vcov(m))), vcov_names = I(colnames(vcov(m))),
    vcov_adj = rows_of(va),
    coef_kr = coef_json(mt, "Kenward-Roger"),
    coef_satterthwaite = coef_json(mt, "Satterthwaite"),
    anova_kr = anova_json(mt, "Kenward-Roger"),
    anova_satterthwaite = anova_json(mt, "Satterthwaite"),
    emmeans = lapply(spec$emm, function(e) emmeans_json(m, e)),
    messages = I(fit$messages), warnings = I(fit$warnings),
    isSingular = isSingular(m)
  )
  write_fixture(out, file.path(FIX_DIR, paste0(spec$name, ".json")))
  cat(sprintf("  %-24s REMLcrit %12.5f  %5.1fs %s\n", spec$name, REMLcrit(m),
              as.numeric(difftime(Sys.time(), t0, units = "secs")),
              paste(c(if (isSingular(m)) "singular", fit$messages, fit$warnings), collapse = "; ")))
  invisible(out)
}

unlink(list.files(FIX_DIR, pattern = "\\.json$", full.names = TRUE))
cat("fitting", length(SUITE), "models\n")
for (spec in SUITE) fit_model(spec)

write_fixture(session_info(c("lme4", "lmerTest", "pbkrtest", "emmeans", "Matrix", "jsonlite"),
                           vapply(SUITE, function(s) s$name, ""), names(DATASETS)),
              file.path(FIX_DIR, "_session.json"))
cat(sprintf("done in %.0fs\n", as.numeric(difftime(Sys.time(), t_start, units = "secs"))))
