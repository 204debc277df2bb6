# make_covstruct_fixtures.R -- glmmTMB reference fits of the covariance structures
# us(), diag(), cs() and ar1() (issue 22) for lme2sm's tests.
#
# Run from the project root (about a minute):
#
#   apt-get install -y r-base-core r-cran-glmmtmb r-cran-jsonlite
#   nice -n 5 Rscript tools/make_covstruct_fixtures.R
#
# Writes
#   tests/fixtures/covstruct/data/{sleepstudy,Orthodont,BodyWeight,ChickWeight,Oats}.csv
#       lme4::sleepstudy and nlme::Orthodont (from lme2sm's bundled CSVs), nlme::BodyWeight
#       and datasets::ChickWeight, each with a time factor whose labels sort (C locale) in
#       time order, as ar1() needs: fDays "d0".."d9", fage "a08".."a14", fTime "t01".."t64"
#       (BodyWeight) and "t00".."t21" (ChickWeight), Oats' fnitro "n00".."n06" (nitro x 10).
#       Rat and Chick are written as text.
#   tests/fixtures/covstruct/<name>.json   one glmmTMB fit per model of SUITE below
#   tests/fixtures/covstruct/_session.json R / package versions, model and dataset names
#
# glmmTMB 1.1.5's cs() is the HETEROGENEOUS compound symmetry (one SD per column, one
# correlation); it has no hetcs()/homcs() (later glmmTMB versions renamed cs() to hetcs() and
# added homcs()). ar1() treats the factor's levels as equally spaced, in level order.
#
# Fixture JSON keys: name, dataset, data_path, factors, formula, REML, nobs, ngrps, df
# (parameters), logLik (the REML criterion's log-likelihood for REML fits, as glmmTMB's
# logLik), AIC, BIC, fixef, se, vcov + vcov_names, sigma (residual SD), terms (one per
# random-effect term in glmmTMB's order: term, group, structure, columns, sd, corr (rows),
# rho (ar1: corr[1, 2]; cs: the common correlation; else null), theta (glmmTMB's theta of
# this term)), theta (all of glmmTMB's theta), betad (log residual variance, glmmTMB's
# dispersion parameter), pdHess, convergence (nlminb's code), message, max_abs_grad,
# boundary (TRUE when sigma < 1e-3 * the smallest random-effect SD or a |correlation| >
# 0.999: values on a boundary are determined less well than logLik), messages, warnings,
# varcorr_print (printed VarCorr), summary (printed summary).

suppressPackageStartupMessages(library(glmmTMB))
source("tools/fixture_helpers.R")

FIX_DIR <- "tests/fixtures/covstruct"
FIX_DATA_DIR <- file.path(FIX_DIR, "data")
t_start <- Sys.time()

# ---------------------------------------------------------------------------------
# 1. datasets
# ---------------------------------------------------------------------------------

ss <- read_csv_data("lme2sm/datasets/sleepstudy.csv", "Subject")
ss <- plain(ss)
ss$fDays <- sprintf("d%d", ss$Days)
orth <- plain(read_csv_data("lme2sm/datasets/Orthodont.csv", c("Subject", "Sex")))
orth$fage <- sprintf("a%02d", as.integer(orth$age))
bw <- plain(nlme::BodyWeight)[, c("weight", "Time", "Rat", "Diet")]
bw$fTime <- sprintf("t%02d", as.integer(bw$Time))
cw <- plain(datasets::ChickWeight)[, c("weight", "Time", "Chick", "Diet")]
cw$fTime <- sprintf("t%02d", as.integer(cw$Time))
oats <- plain(read_csv_data("lme2sm/datasets/Oats.csv", c("Block", "Variety")))
oats$fnitro <- sprintf("n%02d", as.integer(round(10 * oats$nitro)))

DATASETS <- list(
  sleepstudy = list(df = ss, factors = c("Subject", "fDays")),
  Orthodont = list(df = orth, factors = c("Subject", "Sex", "fage")),
  BodyWeight = list(df = bw, factors = c("Rat", "Diet", "fTime")),
  ChickWeight = list(df = cw, factors = c("Chick", "Diet", "fTime")),
  Oats = list(df = oats, factors = c("Block", "Variety", "fnitro"))
)
DATA <- list()
for (nm in names(DATASETS)) {
  DATASETS[[nm]]$path <- file.path(FIX_DATA_DIR, paste0(nm, ".csv"))
  write_csv_data(DATASETS[[nm]]$df, DATASETS[[nm]]$path)
  DATA[[nm]] <- read_csv_data(DATASETS[[nm]]$path, DATASETS[[nm]]$factors)
  cat(sprintf("  %-12s %5d rows  (%s)\n", nm, nrow(DATA[[nm]]), DATASETS[[nm]]$path))
}

# ---------------------------------------------------------------------------------
# 2. the model suite (names are the contract with the Python tests). Each structure on
#    the four data sets, crossed models (the time factor's random intercept crossed with
#    the subject's structured term) and nested ones ((1 | Diet) above Diet:Chick, Sex above
#    Sex:Subject, Oats' Block above Block:Variety). both = TRUE: REML and ML fits
#    (<name>_reml, <name>_ml); otherwise REML only. A fit whose logLik is not finite or
#    whose Hessian is not positive definite is reported and not written (glmmTMB 1.1.5
#    fails so on some of these in one of REML/ML: see the run's log).
# ---------------------------------------------------------------------------------

SUITE <- list(
  # us()
  list(name = "ss_us", dataset = "sleepstudy", formula = "Reaction ~ Days + us(1 + Days | Subject)", both = TRUE),
  list(name = "orth_us", dataset = "Orthodont", formula = "distance ~ age + Sex + us(1 + age | Subject)", both = TRUE),
  list(name = "bw_us", dataset = "BodyWeight", formula = "weight ~ Time * Diet + us(1 + Time | Rat)", both = TRUE),
  list(name = "cw_us", dataset = "ChickWeight", formula = "weight ~ Time * Diet + us(1 + Time | Chick)", both = TRUE),
  list(name = "cw_us_crossed", dataset = "ChickWeight", both = TRUE,
       formula = "weight ~ Time * Diet + us(1 + Time | Chick) + (1 | fTime)"),
  list(name = "bw_us_crossed", dataset = "BodyWeight", both = TRUE,
       formula = "weight ~ Time * Diet + us(1 + Time | Rat) + (1 | fTime)"),
  list(name = "cw_us_nested", dataset = "ChickWeight", both = TRUE,
       formula = "weight ~ Time + (1 | Diet) + us(1 + Time | Diet:Chick)"),
  # diag()
  list(name = "ss_diag", dataset = "sleepstudy", formula = "Reaction ~ Days + diag(1 + Days | Subject)", both = TRUE),
  list(name = "orth_diag", dataset = "Orthodont", formula = "distance ~ age + Sex + diag(1 + age | Subject)", both = TRUE),
  list(name = "bw_diag", dataset = "BodyWeight", formula = "weight ~ Time * Diet + diag(1 + Time | Rat)", both = TRUE),
  list(name = "cw_diag", dataset = "ChickWeight", formula = "weight ~ Time * Diet + diag(1 + Time | Chick)", both = TRUE),
  list(name = "cw_diag_crossed", dataset = "ChickWeight", both = TRUE,
       formula = "weight ~ Time * Diet + diag(1 + Time | Chick) + (1 | fTime)"),
  list(name = "cw_diag_nested", dataset = "ChickWeight", both = TRUE,
       formula = "weight ~ Time + (1 | Diet) + diag(1 + Time | Diet:Chick)"),
  list(name = "oats_diag_nested", dataset = "Oats", both = TRUE,
       formula = "yield ~ nitro + Variety + diag(1 + nitro | Block) + (1 | Block:Variety)"),
  # cs() (heterogeneous in glmmTMB 1.1.5)
  list(name = "ss_cs", dataset = "sleepstudy", formula = "Reaction ~ Days + cs(1 + Days | Subject)", both = TRUE),
  list(name = "orth_cs", dataset = "Orthodont", formula = "distance ~ age + Sex + cs(1 + age | Subject)", both = TRUE),
  list(name = "bw_cs", dataset = "BodyWeight", formula = "weight ~ Time * Diet + cs(1 + Time | Rat)", both = TRUE),
  list(name = "cw_cs", dataset = "ChickWeight", formula = "weight ~ Time * Diet + cs(0 + fTime | Chick)", both = TRUE),
  list(name = "cw_cs_crossed", dataset = "ChickWeight", both = TRUE,
       formula = "weight ~ Time * Diet + cs(0 + fTime | Chick) + (1 | fTime)"),
  list(name = "cw_cs_nested", dataset = "ChickWeight", both = TRUE,
       formula = "weight ~ Time + (1 | Diet) + cs(1 + Time | Diet:Chick)"),
  list(name = "oats_cs_nested", dataset = "Oats", both = TRUE,
       formula = "yield ~ nitro + Variety + (1 | Block) + cs(0 + fnitro | Block:Variety)"),
  # ar1() (levels equally spaced in level order)
  list(name = "orth_ar1", dataset = "Orthodont", formula = "distance ~ age + Sex + ar1(0 + fage | Subject)", both = TRUE),
  list(name = "orth_ar1_crossed", dataset = "Orthodont", both = TRUE,
       formula = "distance ~ age + Sex + ar1(0 + fage | Subject) + (1 | fage)"),
  list(name = "orth_ar1_nested", dataset = "Orthodont", both = TRUE,
       formula = "distance ~ age + (1 | Sex) + ar1(0 + fage | Sex:Subject)"),
  list(name = "bw_ar1_int", dataset = "BodyWeight", both = TRUE,
       formula = "weight ~ Time * Diet + (1 | Rat) + ar1(0 + fTime | Rat)"),
  list(name = "bw_ar1_slope", dataset = "BodyWeight", both = TRUE,
       formula = "weight ~ Time * Diet + (Time | Rat) + ar1(0 + fTime | Rat)"),
  list(name = "bw_ar1_crossed", dataset = "BodyWeight", both = TRUE,
       formula = "weight ~ Time * Diet + ar1(0 + fTime | Rat) + (1 | fTime)"),
  # the residual SD goes to 0 here (ar1 absorbs it): boundary fits, logLik and fixef only
  list(name = "ss_ar1", dataset = "sleepstudy", formula = "Reaction ~ Days + ar1(0 + fDays | Subject)", both = TRUE),
  list(name = "cw_ar1", dataset = "ChickWeight", formula = "weight ~ Time * Diet + ar1(0 + fTime | Chick)", both = TRUE)
)

# ---------------------------------------------------------------------------------
# 3. fit and write
# ---------------------------------------------------------------------------------

STRUCT_NAMES <- names(glmmTMB:::.valid_covstruct)

term_json <- function(m, i, theta_all, offset) {
  rs <- m$modelInfo$reStruc$condReStruc[[i]]
  vc <- VarCorr(m)$cond[[i]]
  sds <- attr(vc, "stddev")
  corr <- attr(vc, "correlation")
  structure <- names(rs$blockCode)
  rho <- if (structure %in% c("ar1", "cs") && length(sds) > 1) corr[1, 2] else NULL
  k <- rs$blockNumTheta
  list(term = names(m$modelInfo$reStruc$condReStruc)[i], group = names(VarCorr(m)$cond)[i],
       structure = structure, columns = I(names(sds)), sd = I(unname(as.numeric(sds))),
       corr = if (length(sds) > 1) rows_of(corr) else NULL, rho = rho,
       theta = I(unname(theta_all[offset + seq_len(k)])))
}

fit_one <- function(spec, REML) {
  data <- DATA[[spec$dataset]]
  fit <- capture(glmmTMB(as.formula(spec$formula), data = data, REML = REML))
  m <- fit$value
  ll <- logLik(m)
  theta <- unname(getME(m, "theta"))
  terms <- list(); off <- 0
  for (i in seq_along(m$modelInfo$reStruc$condReStruc)) {
    terms[[i]] <- term_json(m, i, theta, off)
    off <- off + m$modelInfo$reStruc$condReStruc[[i]]$blockNumTheta
  }
  sds <- unlist(lapply(terms, function(t) t$sd))
  cors <- unlist(lapply(terms, function(t) if (is.null(t$corr)) numeric() else unlist(t$corr)))
  cors <- cors[abs(cors - 1) > 1e-12]
  boundary <- sigma(m) < 1e-3 * min(sds) || any(abs(cors) > 0.999) || min(sds) < 1e-4
  V <- as.matrix(vcov(m)$cond)
  ds <- DATASETS[[spec$dataset]]
  list(
    name = paste0(spec$name, if (isTRUE(spec$both)) if (REML) "_reml" else "_ml" else ""),
    dataset = spec$dataset, data_path = ds$path, factors = I(ds$factors),
    formula = spec$formula, REML = REML, nobs = nobs(m), ngrps = as.list(glmmTMB:::ngrps.glmmTMB(m)$cond),
    df = attr(ll, "df"), logLik = as.numeric(ll), AIC = AIC(m), BIC = BIC(m),
    fixef = named_list(fixef(m)$cond), se = named_list(sqrt(diag(V))),
    vcov = rows_of(V), vcov_names = I(colnames(V)), sigma = sigma(m),
    terms = terms, theta = I(theta), betad = unname(m$fit$par[names(m$fit$par) == "betad"]),
    pdHess = m$sdr$pdHess, convergence = m$fit$convergence, message = m$fit$message,
    max_abs_grad = max(abs(m$sdr$gradient.fixed)), boundary = boundary,
    messages = I(fit$messages), warnings = I(fit$warnings),
    varcorr_print = paste(capture.output(print(VarCorr(m))), collapse = "\n"),
    summary = paste(capture.output(print(summary(m))), collapse = "\n"))
}

unlink(list.files(FIX_DIR, pattern = "\\.json$", full.names = TRUE))
names_out <- character()
for (spec in SUITE) {
  for (REML in if (isTRUE(spec$both)) c(TRUE, FALSE) else TRUE) {
    t0 <- Sys.time()
    out <- tryCatch(fit_one(spec, REML), error = function(e) {
      cat(sprintf("  %-22s FAILED: %s\n", spec$name, conditionMessage(e))); NULL })
    if (is.null(out)) next
    if (!is.finite(out$logLik) || !out$pdHess) {
      cat(sprintf("  %-22s skipped: logLik %s, pdHess %s\n", out$name, out$logLik, out$pdHess)); next }
    write_fixture(out, file.path(FIX_DIR, paste0(out$name, ".json")))
    names_out <- c(names_out, out$name)
    note <- c(if (!out$pdHess) "Hessian not positive definite", if (out$boundary) "boundary",
              out$messages, out$warnings)
    cat(sprintf("  %-22s logLik %12.4f  sigma %9.4g  %4.1fs %s\n", out$name, out$logLik, out$sigma,
                as.numeric(difftime(Sys.time(), t0, units = "secs")), paste(note, collapse = "; ")))
  }
}
write_fixture(session_info(c("glmmTMB", "TMB", "Matrix", "jsonlite"), names_out, names(DATASETS)),
              file.path(FIX_DIR, "_session.json"))
cat(sprintf("done in %.0fs\n", as.numeric(difftime(Sys.time(), t_start, units = "secs"))))
