# make_reporting_fixtures.R -- reference values for issue 22's reporting, robust and
# prediction parts: performance::r2_nakagawa / icc, clubSandwich's cluster-robust
# variances with Satterthwaite df, and fixed-part prediction SEs with prediction-interval
# variances.
#
# Run from the project root (under a minute), after tools/make_fixtures.R,
# tools/make_glmer_fixtures.R and tools/make_glmer_gamma_fixtures.R have written the CSVs:
#
#   apt-get install -y r-base-core r-cran-lme4 r-cran-jsonlite r-cran-performance \
#       r-cran-clubsandwich
#   nice -n 5 Rscript tools/make_reporting_fixtures.R
#
# Writes
#   tests/fixtures/r2/<name>.json        r2_nakagawa and icc of one lmer or glmer fit
#   tests/fixtures/robust/<name>.json    vcovCR CR0/CR1/CR2 and coef_test (Satterthwaite)
#   tests/fixtures/predict_se/<name>.json  predictions for a newdata with seen and new levels
#   tests/fixtures/predict_se/data/<name>_newdata.csv  that newdata
#   tests/fixtures/tidy/<name>.json      broom.mixed's tidy(m, conf.int = TRUE) and glance(m)
#   tests/fixtures/{r2,robust,predict_se,tidy}/_session.json
#
# tidy keys: the r2 keys' first nine, tidy_columns and tidy (rows {effect, group, term,
# estimate, std.error, statistic, [p.value,] conf.low, conf.high}; NA -> null),
# glance_columns and glance ({nobs, sigma, logLik, AIC, BIC, REMLcrit or deviance,
# df.residual}).
#
# Every fit reads its data back from the CSV (factor levels sorted in the C locale).
#
# r2 keys: name, kind ("lmer"/"glmer"), dataset, data_path, factors, formula, REML (lmer),
# family, link, R2_conditional, R2_marginal, ICC_adjusted, ICC_unadjusted (performance's
# icc; ICC_conditional is the same number as ICC_unadjusted in performance 0.10.2),
# icc_by_group ({group: ICC} from icc(by_group = TRUE), null when it fails), variance
# (insight::get_variance: var.fixed, var.random, var.residual, var.distribution,
# var.dispersion, var.intercept {group: v}, var.slope {group.term: v}), null_fixef (the
# intercept of insight::null_model, the refit with the same random effects and only an
# intercept (and offset), from which the lognormal approximation takes mu for Poisson and
# Gamma; null for gaussian and binomial) and its logLik (null_logLik), fixef, sigma and term_cov (each VarCorr term's
# {names, cov} in lme4's order: the fit the numbers are computed at), warnings, messages.
#
# robust keys: name, dataset, data_path, factors, formula, REML, cluster (the grouping
# factor clubSandwich clusters on: the outermost one), n_clusters, and for each of CR0,
# CR1, CR2: vcov (rows; coefficient order vcov_names), and for CR0, CR2: coef_test rows
# {coef, beta, SE, tstat, df, p} (test = "Satterthwaite"). model_vcov: vcov(m).
#
# predict_se (glmer models fitted with tight NLopt tolerances, lme4's best optimum) keys: name, kind, dataset, data_path, factors, formula, REML, family, link,
# newdata_path (CSV), newdata_factors, fixef, vcov (rows), sigma, new_level (per row: TRUE where some grouping level
# is unseen), fit (predict(m, newdata, allow.new.levels = TRUE), link scale), fit_fixed
# (re.form = NA), se_fixed (sqrt(diag(X vcov(m) X')), X the newdata's fixed-effects
# design), var_re_marginal (per row, sum over terms of z' Sigma_term z: every term's
# random effect as a new draw), var_re_conditional (seen levels: z' condVar z from
# ranef(condVar = TRUE); unseen levels: z' Sigma z, as allow.new.levels sets their
# effects to 0), sigma2 (sigma(m)^2 for lmer, null for glmer), pi_lower / pi_upper (lmer:
# fit +- qnorm(0.975) sqrt(se_fixed^2 + var_re_conditional + sigma2)), ci_lower/ci_upper
# (fit_fixed +- qnorm(0.975) se_fixed).

suppressPackageStartupMessages({
  library(lme4)
  library(performance)
  library(clubSandwich)
  library(broom.mixed)
})
source("tools/fixture_helpers.R")

DATA_DIR <- "lme2sm/datasets"
t_start <- Sys.time()

DATASETS <- list(
  sleepstudy = list(path = file.path(DATA_DIR, "sleepstudy.csv"), factors = "Subject"),
  Dyestuff = list(path = file.path(DATA_DIR, "Dyestuff.csv"), factors = "Batch"),
  Penicillin = list(path = file.path(DATA_DIR, "Penicillin.csv"), factors = c("plate", "sample")),
  Pastes = list(path = file.path(DATA_DIR, "Pastes.csv"), factors = c("batch", "cask", "sample")),
  Oats = list(path = file.path(DATA_DIR, "Oats.csv"), factors = c("Block", "Variety")),
  Orthodont = list(path = file.path(DATA_DIR, "Orthodont.csv"), factors = c("Subject", "Sex")),
  Machines = list(path = file.path(DATA_DIR, "Machines.csv"), factors = c("Worker", "Machine")),
  cake = list(path = file.path(DATA_DIR, "cake.csv"), factors = c("replicate", "recipe")),
  cbpp = list(path = file.path(DATA_DIR, "cbpp.csv"), factors = c("herd", "period")),
  grouseticks = list(path = file.path(DATA_DIR, "grouseticks.csv"), factors = c("INDEX", "BROOD", "YEAR", "LOCATION")),
  poisson_exposure = list(path = "tests/fixtures/glmer/data/poisson_exposure.csv", factors = "g"),
  gamma_sim = list(path = "tests/fixtures/glmer_gamma/data/gamma_sim.csv", factors = "g")
)
DATA <- lapply(DATASETS, function(ds) read_csv_data(ds$path, ds$factors))

LMER <- list(
  list(name = "sleepstudy_corr", dataset = "sleepstudy", formula = "Reaction ~ Days + (Days | Subject)"),
  list(name = "sleepstudy_ml", dataset = "sleepstudy", formula = "Reaction ~ Days + (Days | Subject)", REML = FALSE),
  list(name = "sleepstudy_int", dataset = "sleepstudy", formula = "Reaction ~ Days + (1 | Subject)"),
  list(name = "sleepstudy_uncorr", dataset = "sleepstudy", formula = "Reaction ~ Days + (Days || Subject)"),
  list(name = "dyestuff", dataset = "Dyestuff", formula = "Yield ~ 1 + (1 | Batch)"),
  list(name = "penicillin", dataset = "Penicillin", formula = "diameter ~ 1 + (1 | plate) + (1 | sample)"),
  list(name = "pastes_nested", dataset = "Pastes", formula = "strength ~ 1 + (1 | batch/cask)"),
  list(name = "oats", dataset = "Oats", formula = "yield ~ nitro + Variety + (1 | Block/Variety)"),
  list(name = "orthodont", dataset = "Orthodont", formula = "distance ~ age + Sex + (age | Subject)"),
  list(name = "orthodont_ml", dataset = "Orthodont", formula = "distance ~ age + Sex + (age | Subject)", REML = FALSE),
  list(name = "machines_uncorr_factor", dataset = "Machines", formula = "score ~ Machine + (1 | Worker) + (1 | Worker:Machine)"),
  list(name = "cake", dataset = "cake", formula = "angle ~ recipe * temp + (1 | recipe:replicate)")
)
GLMER <- list(
  list(name = "cbpp_binomial", dataset = "cbpp", family = "binomial",
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  list(name = "cbpp_probit", dataset = "cbpp", family = 'binomial(link = "probit")',
       formula = "cbind(incidence, size - incidence) ~ period + (1 | herd)"),
  list(name = "grouseticks_poisson", dataset = "grouseticks", family = "poisson",
       formula = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)"),
  list(name = "grouseticks_nested", dataset = "grouseticks", family = "poisson",
       formula = "TICKS ~ YEAR + cHEIGHT + (1 | LOCATION/BROOD)"),
  list(name = "poisson_offset", dataset = "poisson_exposure", family = "poisson",
       formula = "y ~ x + offset(log(exposure)) + (1 | g)"),
  list(name = "gamma_log", dataset = "gamma_sim", family = 'Gamma(link = "log")', formula = "y_log ~ x + (1 | g)")
)

NLOPT_TIGHT <- list(xtol_rel = 1e-12, xtol_abs = 1e-12, ftol_abs = 1e-12, ftol_rel = 1e-14, maxeval = 1e5)

# tight = TRUE: glmer with NLopt's BOBYQA at tight tolerances and PIRLS converged to
# tolPwrss = 1e-12 (as tools/make_glmer_tight_refs.R: lme4's Hessian, so its vcov, is then
# accurate; at the default 1e-7 it is off by up to 1 %); lme4's default also stops short
# on cbpp by 1e-4 in fixef
fit_spec <- function(spec, tight = FALSE) {
  data <- DATA[[spec$dataset]]
  env <- list2env(list(.data = data), parent = globalenv())
  if (is.null(spec$family)) {
    call <- call("lmer", as.formula(spec$formula), data = quote(.data), REML = !isFALSE(spec$REML))
  } else {
    call <- call("glmer", as.formula(spec$formula), data = quote(.data), family = str2lang(spec$family))
    if (tight) call$control <- glmerControl(optimizer = "nloptwrap", optCtrl = NLOPT_TIGHT, tolPwrss = 1e-12)
  }
  m <- eval(call, env)
  # performance / clubSandwich re-evaluate the call: keep the data under its name
  m@call$data <- data
  m
}

base_keys <- function(spec, m) {
  ds <- DATASETS[[spec$dataset]]
  fam <- family(m)
  list(name = spec$name, kind = if (is.null(spec$family)) "lmer" else "glmer",
       dataset = spec$dataset, data_path = ds$path, factors = I(ds$factors), formula = spec$formula,
       REML = if (is.null(spec$family)) !isFALSE(spec$REML) else NULL,
       family = fam$family, link = fam$link)
}

# ---------------------------------------------------------------------------------
# r2_nakagawa and icc
# ---------------------------------------------------------------------------------

r2_fixture <- function(spec) {
  m <- fit_spec(spec)
  cap <- capture({
    r2 <- r2_nakagawa(m)
    ic <- icc(m)
    icg <- tryCatch(icc(m, by_group = TRUE), error = function(e) NULL)
    v <- insight::get_variance(m)
    nm <- if (inherits(m, "glmerMod") && family(m)$family != "binomial") insight::null_model(m) else NULL
    list(r2 = r2, ic = ic, icg = icg, v = v, nm = nm)
  })
  x <- cap$value
  vv <- lapply(x$v, function(e) if (length(e) > 1 || !is.null(names(e))) named_list(e) else as.numeric(e))
  c(base_keys(spec, m), list(
    R2_conditional = unname(as.numeric(x$r2$R2_conditional)), R2_marginal = unname(as.numeric(x$r2$R2_marginal)),
    ICC_adjusted = x$ic$ICC_adjusted, ICC_unadjusted = x$ic$ICC_unadjusted,
    icc_by_group = if (is.null(x$icg)) NULL else setNames(as.list(x$icg$ICC), x$icg$Group),
    variance = vv, null_fixef = if (is.null(x$nm)) NULL else named_list(fixef(x$nm)),
    null_logLik = if (is.null(x$nm)) NULL else as.numeric(logLik(x$nm)),
    fixef = named_list(fixef(m)), sigma = sigma(m),
    term_cov = lapply(VarCorr(m), function(v) list(names = I(colnames(v)), cov = rows_of(as.matrix(v)))),
    messages = I(cap$messages), warnings = I(unique(cap$warnings))))
}

# ---------------------------------------------------------------------------------
# clubSandwich
# ---------------------------------------------------------------------------------

robust_fixture <- function(spec) {
  m <- fit_spec(spec)
  cl <- clubSandwich:::get_outer_group(m)
  out <- c(base_keys(spec, m)[c("name", "dataset", "data_path", "factors", "formula", "REML")],
           list(cluster = names(m@flist)[length(m@flist)], n_clusters = nlevels(cl),
                vcov_names = I(names(fixef(m))), model_vcov = rows_of(as.matrix(vcov(m)))))
  for (type in c("CR0", "CR1", "CR2")) {
    V <- vcovCR(m, type = type)
    out[[type]] <- list(vcov = rows_of(as.matrix(V)))
    if (type != "CR1") {
      ct <- as.data.frame(coef_test(m, vcov = V, test = "Satterthwaite"))
      out[[type]]$coef_test <- lapply(seq_len(nrow(ct)), function(i) list(
        coef = ct$Coef[i], beta = ct$beta[i], SE = ct$SE[i], tstat = ct$tstat[i],
        df = ct$df_Satt[i], p = ct$p_Satt[i]))
    }
  }
  out
}

# ---------------------------------------------------------------------------------
# prediction SEs
# ---------------------------------------------------------------------------------

# newdata: three rows of the data (rows 1 + 0, n/3 + 1, 2n/3 + 2, roughly) as seen, the same
# rows with every grouping variable that is not also a fixed-effects variable renamed to an
# unseen "new_<level>" (every term's level new), and the same rows with only the last
# grouping factor's first such variable renamed (new in some terms, seen in others).
make_newdata <- function(m, data) {
  groups <- names(m@flist)
  fixed_vars <- all.vars(formula(m, fixed.only = TRUE)[-2])
  parts <- setdiff(unique(unlist(strsplit(groups, ":", fixed = TRUE))), fixed_vars)
  idx <- round(seq(1, nrow(data), length.out = 4))[1:3] + 0:2
  rows <- plain(data[idx, , drop = FALSE])
  new_all <- rows
  for (p in parts) new_all[[p]] <- paste0("new_", new_all[[p]])
  mixed <- rows
  last <- setdiff(strsplit(groups[length(groups)], ":", fixed = TRUE)[[1]], fixed_vars)[1]
  mixed[[last]] <- paste0("new_", mixed[[last]])
  rbind(rows, new_all, mixed)
}

# For each term of lme4's VarCorr (in its order): the newdata's rows of the term's
# columns (model.matrix of the bar's left side) and each row's level of the grouping factor.
term_designs <- function(m, nd) {
  bars <- findbars(expandDoubleVerts(formula(m)))
  cnms <- m@cnms
  out <- vector("list", length(cnms))
  for (b in bars) {
    gname <- paste(deparse(b[[3]]), collapse = "")
    Z <- model.matrix(as.formula(paste("~", paste(deparse(b[[2]]), collapse = ""))), nd)
    i <- which(names(cnms) == gname & vapply(cnms, function(cn) identical(cn, colnames(Z)), TRUE))
    stopifnot(length(i) == 1)
    lev <- do.call(paste, c(lapply(strsplit(gname, ":", fixed = TRUE)[[1]], function(p) as.character(nd[[p]])),
                            sep = ":"))
    out[[i]] <- list(Z = Z, lev = lev, group = gname)
  }
  out
}

predict_fixture <- function(spec, newdata_dir) {
  m <- fit_spec(spec, tight = TRUE)
  data <- DATA[[spec$dataset]]
  path <- file.path(newdata_dir, paste0(spec$name, "_newdata.csv"))
  write_csv_data(make_newdata(m, data), path)
  ds <- DATASETS[[spec$dataset]]
  nd <- read_csv_data(path, ds$factors)
  # factors whose newdata values were all seen take the fit's levels (fixed-effects designs)
  for (f in ds$factors) if (all(as.character(nd[[f]]) %in% levels(data[[f]])))
    nd[[f]] <- factor(as.character(nd[[f]]), levels = levels(data[[f]]))
  fit <- predict(m, newdata = nd, allow.new.levels = TRUE)
  fit_fixed <- predict(m, newdata = nd, re.form = NA)
  tt <- delete.response(terms(m, fixed.only = TRUE))
  X <- model.matrix(tt, model.frame(tt, nd, na.action = na.pass), contrasts.arg = attr(getME(m, "X"), "contrasts"))
  V <- as.matrix(vcov(m))
  se_fixed <- sqrt(rowSums((X %*% V) * X))
  vc <- VarCorr(m)
  re <- ranef(m, condVar = TRUE)
  var_marg <- numeric(nrow(nd)); var_cond <- numeric(nrow(nd)); new_level <- logical(nrow(nd))
  designs <- term_designs(m, nd)
  for (i in seq_along(designs)) {
    d <- designs[[i]]
    Sigma <- as.matrix(vc[[i]])
    rg <- re[[d$group]]
    pv <- attr(rg, "postVar")
    cols <- match(colnames(d$Z), colnames(rg))
    # condVar of the group's effects: the block of this term's columns
    for (r in seq_len(nrow(nd))) {
      z <- d$Z[r, ]
      vm <- as.numeric(t(z) %*% Sigma %*% z)
      var_marg[r] <- var_marg[r] + vm
      j <- match(d$lev[r], rownames(rg))
      if (is.na(j)) {
        var_cond[r] <- var_cond[r] + vm; new_level[r] <- TRUE
      } else {
        P <- if (is.list(attr(rg, "postVar"))) NULL else as.matrix(pv[cols, cols, j])
        if (is.null(P)) stop("postVar per term not handled")
        var_cond[r] <- var_cond[r] + as.numeric(t(z) %*% P %*% z)
      }
    }
  }
  is_lmer <- is.null(spec$family)
  s2 <- if (is_lmer) sigma(m)^2 else NULL
  q <- qnorm(0.975)
  out <- c(base_keys(spec, m), list(
    newdata_path = path, newdata_factors = I(ds$factors), new_level = I(new_level),
    fixef = named_list(fixef(m)), vcov = rows_of(V), sigma = sigma(m),
    fit = I(unname(fit)), fit_fixed = I(unname(fit_fixed)), se_fixed = I(unname(se_fixed)),
    var_re_marginal = I(var_marg), var_re_conditional = I(var_cond), sigma2 = s2,
    ci_lower = I(unname(fit_fixed - q * se_fixed)), ci_upper = I(unname(fit_fixed + q * se_fixed))))
  if (is_lmer) {
    half <- q * sqrt(se_fixed^2 + var_cond + s2)
    out$pi_lower <- I(unname(fit - half)); out$pi_upper <- I(unname(fit + half))
  }
  out
}

# ---------------------------------------------------------------------------------
# broom.mixed's tidy and glance
# ---------------------------------------------------------------------------------

tidy_fixture <- function(spec) {
  m <- fit_spec(spec)
  td <- as.data.frame(tidy(m, conf.int = TRUE))
  gl <- as.data.frame(glance(m))
  c(base_keys(spec, m), list(tidy_columns = I(names(td)), tidy = df_rows(td),
                             glance_columns = I(names(gl)), glance = df_rows(gl)[[1]]))
}

# ---------------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------------

run_kind <- function(kind, specs, maker, ...) {
  dir <- file.path("tests/fixtures", kind)
  unlink(list.files(dir, pattern = "\\.json$", full.names = TRUE))
  done <- character()
  for (spec in specs) {
    out <- tryCatch(maker(spec, ...), error = function(e) {
      cat(sprintf("  %-10s %-24s FAILED: %s\n", kind, spec$name, conditionMessage(e))); NULL })
    if (is.null(out)) next
    write_fixture(out, file.path(dir, paste0(spec$name, ".json")))
    done <- c(done, spec$name)
    cat(sprintf("  %-10s %-24s ok\n", kind, spec$name))
  }
  write_fixture(session_info(c("lme4", "performance", "insight", "clubSandwich", "Matrix", "jsonlite"),
                             done, unique(vapply(specs, function(s) s$dataset, ""))),
                file.path(dir, "_session.json"))
}

run_kind("r2", c(LMER, GLMER), r2_fixture)
NESTED <- Filter(function(s) !(s$name %in% c("penicillin")), LMER)
run_kind("robust", NESTED, robust_fixture)
TIDY <- c(Filter(function(s) s$name %in% c("sleepstudy_corr", "sleepstudy_uncorr", "sleepstudy_ml", "penicillin",
                                           "pastes_nested", "orthodont"), LMER),
          list(list(name = "machines_factor_slope", dataset = "Machines", formula = "score ~ Machine + (Machine | Worker)")),
          Filter(function(s) s$name %in% c("cbpp_binomial", "grouseticks_nested"), GLMER))
run_kind("tidy", TIDY, tidy_fixture)
PRED <- c(Filter(function(s) s$name %in% c("sleepstudy_corr", "sleepstudy_int", "orthodont", "penicillin",
                                           "pastes_nested", "machines_uncorr_factor"), LMER),
          Filter(function(s) s$name %in% c("cbpp_binomial", "poisson_offset"), GLMER))
dir.create("tests/fixtures/predict_se/data", showWarnings = FALSE, recursive = TRUE)
run_kind("predict_se", PRED, predict_fixture, newdata_dir = "tests/fixtures/predict_se/data")
cat(sprintf("done in %.0fs\n", as.numeric(difftime(Sys.time(), t_start, units = "secs"))))
