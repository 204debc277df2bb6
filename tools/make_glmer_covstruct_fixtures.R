# make_glmer_covstruct_fixtures.R -- glmmTMB reference fits of the covariance structures
# us(), diag(), cs() and ar1() in generalised linear mixed models (binomial and Poisson,
# Laplace, ML; issue 22) for lme2sm's glmer tests (tests/test_glmer_covstruct.py).
#
# Run from the project root (a few minutes; VerbAgg's models are most of it):
#
#   apt-get install -y r-base-core r-cran-glmmtmb r-cran-lme4 r-cran-jsonlite
#   nice -n 5 Rscript tools/make_glmer_covstruct_fixtures.R
#
# Writes
#   tests/fixtures/glmer_covstruct/data/{epil2,cbpp,sleepstudy_binary,Salamanders,Owls}.csv
#       lme4::cbpp with cperiod = as.integer(period) - 2.5 (a centred period number for
#       random slopes); a binary sleepstudy (slow = Reaction above 260 + 10 Days ms, the
#       day's typical reaction; "Reaction > 300" separates the subjects: ar1 SD 71 in glmmTMB);
#       fDays "d0".."d9"; glmmTMB::epil2 (seizure counts over four visits; subject and trt as
#       text, fperiod "v1".."v4");
#       glmmTMB::Salamanders (site, spp and mined as text, fsample "s1".."s4" for ar1() over
#       the four visits); glmmTMB::Owls (Nest as text, cArrival = ArrivalTime - its mean,
#       logBroodSize for the offset). grouseticks and VerbAgg are lme2sm's bundled CSVs.
#   tests/fixtures/glmer_covstruct/<name>.json   one glmmTMB fit per model of SUITE
#   tests/fixtures/glmer_covstruct/_session.json R / package versions, models, datasets
#
# glmmTMB 1.1.5's cs() is the heterogeneous compound symmetry (one SD per column, one
# correlation); ar1() treats the factor's levels as equally spaced, in level order.
#
# Fixture JSON keys: those of tools/make_covstruct_fixtures.R (name, dataset, data_path,
# factors, formula, nobs, ngrps, df, logLik, AIC, BIC, fixef, se, vcov + vcov_names, terms
# (term, group, structure, columns, sd, corr, rho, theta), theta, pdHess, convergence,
# message, max_abs_grad, boundary, messages, warnings, varcorr_print, summary), with kind
# "glmer", family, link, nAGQ (1: Laplace) and REML (FALSE), and
#   tight       glmmTMB refitted from its own optimum with nlminb's rel.tol 1e-14 (and
#               eval.max/iter.max 1e4): logLik, fixef, se, terms (as above), gain (its
#               logLik minus the default fit's; the tests compare with the higher)
#   lme4        where lme4 can write the model (us() as (x | g), diag() as (x || g) for
#               numeric effects or one (0 + dummy(f, "level") | g) term per level of a
#               factor): lme4::glmer's fit of it (formula, logLik, fixef, se, varcorr rows,
#               messages/warnings, and logLik_gap = lme4's minus glmmTMB's best): the same
#               Laplace likelihood, so it should agree with glmmTMB's.

suppressPackageStartupMessages({ library(glmmTMB); library(lme4) })
source("tools/fixture_helpers.R")

FIX_DIR <- "tests/fixtures/glmer_covstruct"
FIX_DATA_DIR <- file.path(FIX_DIR, "data")
t_start <- Sys.time()

# ---------------------------------------------------------------------------------
# 1. datasets
# ---------------------------------------------------------------------------------

cbpp <- plain(lme4::cbpp)
cbpp$cperiod <- as.integer(cbpp$period) - 2.5
ss <- plain(read_csv_data("lme2sm/datasets/sleepstudy.csv", "Subject"))
ssb <- data.frame(slow = as.integer(ss$Reaction > 260 + 10 * ss$Days), Days = ss$Days,
                  Subject = ss$Subject, fDays = sprintf("d%d", ss$Days), stringsAsFactors = FALSE)
sal <- plain(glmmTMB::Salamanders)[, c("count", "site", "mined", "spp", "sample", "cover", "DOY")]
sal$fsample <- sprintf("s%d", sal$sample)
owls <- plain(glmmTMB::Owls)[, c("SiblingNegotiation", "Nest", "FoodTreatment", "SexParent",
                                 "ArrivalTime", "BroodSize", "logBroodSize")]
owls$cArrival <- owls$ArrivalTime - mean(owls$ArrivalTime)

epil <- plain(glmmTMB::epil2)[, c("y", "trt", "Base", "Age", "Visit", "subject", "period")]
epil$subject <- sprintf("s%02d", epil$subject)
epil$fperiod <- sprintf("v%d", epil$period)

DATASETS <- list(
  epil2 = list(df = epil, factors = c("trt", "subject", "fperiod")),
  cbpp = list(df = cbpp, factors = c("herd", "period")),
  sleepstudy_binary = list(df = ssb, factors = c("Subject", "fDays")),
  Salamanders = list(df = sal, factors = c("site", "mined", "spp", "fsample")),
  Owls = list(df = owls, factors = c("Nest", "FoodTreatment", "SexParent")),
  grouseticks = list(path = "lme2sm/datasets/grouseticks.csv",
                     factors = c("INDEX", "BROOD", "YEAR", "LOCATION")),
  VerbAgg = list(path = "lme2sm/datasets/VerbAgg.csv",
                 factors = c("Gender", "item", "resp", "id", "btype", "situ", "mode", "r2"))
)
DATA <- list()
for (nm in names(DATASETS)) {
  ds <- DATASETS[[nm]]
  if (is.null(ds$path)) {
    ds$path <- file.path(FIX_DATA_DIR, paste0(nm, ".csv"))
    write_csv_data(ds$df, ds$path)
  }
  DATASETS[[nm]]$path <- ds$path
  DATA[[nm]] <- read_csv_data(ds$path, ds$factors)
  cat(sprintf("  %-18s %5d rows  (%s)\n", nm, nrow(DATA[[nm]]), ds$path))
}

# ---------------------------------------------------------------------------------
# 2. the model suite (names are the contract with the Python tests): each structure with
#    binomial (cbpp's cbind, VerbAgg's and sleepstudy's 0/1) and Poisson (grouseticks,
#    Salamanders, epil2, Owls with an offset) responses; crossed (VerbAgg's id and item,
#    Salamanders' site and spp) and nested (grouseticks' BROOD within LOCATION, Salamanders'
#    spp:site within site) terms.
#    lme4 = the same model in lme4's syntax (NULL: lme4 cannot write it).
# ---------------------------------------------------------------------------------

CB <- "cbind(incidence, size - incidence)"
VA <- "r2 ~ Anger + Gender + btype + situ"
VA_DIAG <- paste0("(0 + dummy(btype, \"", c("curse", "scold", "shout"), "\") | id)", collapse = " + ")
GT <- "TICKS ~ YEAR + cHEIGHT"
SAL <- "count ~ spp + mined"
EPIL <- "y ~ Base * trt + Age + Visit"
OWL <- "SiblingNegotiation ~ FoodTreatment * SexParent + offset(logBroodSize)"
SUITE <- list(
  # us()
  list(name = "cbpp_us", dataset = "cbpp", family = "binomial",
       formula = paste(CB, "~ period + us(1 + cperiod | herd)"),
       lme4 = paste(CB, "~ period + (1 + cperiod | herd)")),
  list(name = "va_us_crossed", dataset = "VerbAgg", family = "binomial",
       formula = paste(VA, "+ (1 | item) + us(0 + btype | id)"),
       lme4 = paste(VA, "+ (1 | item) + (0 + btype | id)")),
  list(name = "owls_us", dataset = "Owls", family = "poisson",
       formula = paste(OWL, "+ us(1 + cArrival | Nest)"),
       lme4 = paste(OWL, "+ (1 + cArrival | Nest)")),
  list(name = "sal_us_nested", dataset = "Salamanders", family = "poisson",
       formula = paste(SAL, "+ (1 | site) + us(1 + DOY | spp:site)"),
       lme4 = paste(SAL, "+ (1 | site) + (1 + DOY | spp:site)")),
  # diag()
  list(name = "cbpp_diag", dataset = "cbpp", family = "binomial",
       formula = paste(CB, "~ period + diag(1 + cperiod | herd)"),
       lme4 = paste(CB, "~ period + (1 + cperiod || herd)")),
  list(name = "va_diag_crossed", dataset = "VerbAgg", family = "binomial",
       formula = paste(VA, "+ (1 | item) + diag(0 + btype | id)"),
       lme4 = paste(VA, "+ (1 | item) +", VA_DIAG)),
  list(name = "owls_diag", dataset = "Owls", family = "poisson",
       formula = paste(OWL, "+ diag(1 + cArrival | Nest)"),
       lme4 = paste(OWL, "+ (1 + cArrival || Nest)")),
  list(name = "sal_diag_crossed", dataset = "Salamanders", family = "poisson",
       formula = paste(SAL, "+ (1 | spp:site) + diag(1 + DOY | site)"),
       lme4 = paste(SAL, "+ (1 | spp:site) + (1 + DOY || site)")),
  list(name = "epil_diag", dataset = "epil2", family = "poisson",
       formula = paste(EPIL, "+ diag(1 + Visit | subject)"),
       lme4 = paste(EPIL, "+ (1 + Visit || subject)")),
  list(name = "gt_diag_nested", dataset = "grouseticks", family = "poisson",
       formula = paste(GT, "+ (1 | BROOD) + diag(0 + YEAR | LOCATION)"), lme4 = NULL),
  # cs()
  list(name = "cbpp_cs", dataset = "cbpp", family = "binomial",
       formula = paste(CB, "~ period + cs(1 + cperiod | herd)"),
       lme4 = paste(CB, "~ period + (1 + cperiod | herd)")),
  list(name = "cbpp_cs_period", dataset = "cbpp", family = "binomial",
       formula = paste(CB, "~ period + cs(0 + period | herd)"), lme4 = NULL),
  list(name = "va_cs_crossed", dataset = "VerbAgg", family = "binomial",
       formula = paste(VA, "+ (1 | item) + cs(0 + btype | id)"), lme4 = NULL),
  list(name = "sal_cs_crossed", dataset = "Salamanders", family = "poisson",
       formula = paste(SAL, "+ (1 | spp) + cs(0 + fsample | site)"), lme4 = NULL),
  list(name = "epil_cs", dataset = "epil2", family = "poisson",
       formula = paste(EPIL, "+ cs(0 + fperiod | subject)"), lme4 = NULL),
  list(name = "gt_cs_nested", dataset = "grouseticks", family = "poisson",
       formula = paste(GT, "+ (1 | BROOD) + cs(0 + YEAR | LOCATION)"), lme4 = NULL),
  # ar1() (levels equally spaced in level order)
  list(name = "cbpp_ar1", dataset = "cbpp", family = "binomial",
       formula = paste(CB, "~ period + ar1(0 + period | herd)"), lme4 = NULL),
  list(name = "ss_ar1_binary", dataset = "sleepstudy_binary", family = "binomial",
       formula = "slow ~ Days + ar1(0 + fDays | Subject)", lme4 = NULL),
  list(name = "sal_ar1", dataset = "Salamanders", family = "poisson",
       formula = paste(SAL, "+ ar1(0 + fsample | site)"), lme4 = NULL),
  list(name = "sal_ar1_crossed", dataset = "Salamanders", family = "poisson",
       formula = paste(SAL, "+ (1 | spp:site) + ar1(0 + fsample | site)"), lme4 = NULL),
  list(name = "epil_ar1", dataset = "epil2", family = "poisson",
       formula = paste(EPIL, "+ ar1(0 + fperiod | subject)"), lme4 = NULL),
  list(name = "epil_ar1_int", dataset = "epil2", family = "poisson",
       formula = paste(EPIL, "+ (1 | subject) + ar1(0 + fperiod | subject)"), lme4 = NULL),
  list(name = "gt_ar1_nested", dataset = "grouseticks", family = "poisson",
       formula = paste(GT, "+ (1 | BROOD) + ar1(0 + YEAR | LOCATION)"), lme4 = NULL)
)

# ---------------------------------------------------------------------------------
# 3. fit and write
# ---------------------------------------------------------------------------------

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

terms_of <- function(m) {
  theta <- unname(getME(m, "theta"))
  terms <- list(); off <- 0
  for (i in seq_along(m$modelInfo$reStruc$condReStruc)) {
    terms[[i]] <- term_json(m, i, theta, off)
    off <- off + m$modelInfo$reStruc$condReStruc[[i]]$blockNumTheta
  }
  terms
}

TIGHT <- glmmTMBControl(optCtrl = list(rel.tol = 1e-14, eval.max = 1e4, iter.max = 1e4))

tight_json <- function(spec, data, m) {
  fit <- tryCatch(capture(glmmTMB(as.formula(spec$formula), data = data, family = spec$family,
                                  control = TIGHT, start = list(beta = fixef(m)$cond,
                                                                theta = getME(m, "theta")))),
                  error = function(e) NULL)
  if (is.null(fit) || !is.finite(logLik(fit$value))) return(NULL)
  t <- fit$value
  list(logLik = as.numeric(logLik(t)), fixef = named_list(fixef(t)$cond),
       se = named_list(sqrt(diag(as.matrix(vcov(t)$cond)))), terms = terms_of(t),
       gain = as.numeric(logLik(t)) - as.numeric(logLik(m)), pdHess = t$sdr$pdHess,
       message = t$fit$message, warnings = I(fit$warnings))
}

lme4_json <- function(spec, data, best) {
  if (is.null(spec$lme4)) return(NULL)
  fit <- tryCatch(capture(glmer(as.formula(spec$lme4), data = data, family = spec$family)),
                  error = function(e) NULL)
  if (is.null(fit)) return(NULL)
  g <- fit$value
  list(formula = spec$lme4, logLik = as.numeric(logLik(g)), fixef = named_list(fixef(g)),
       se = named_list(sqrt(diag(as.matrix(vcov(g))))), varcorr = varcorr_json(g),
       logLik_gap = as.numeric(logLik(g)) - best, messages = I(fit$messages),
       warnings = I(fit$warnings))
}

fit_one <- function(spec) {
  data <- DATA[[spec$dataset]]
  fit <- capture(glmmTMB(as.formula(spec$formula), data = data, family = spec$family))
  m <- fit$value
  ll <- logLik(m)
  terms <- terms_of(m)
  sds <- unlist(lapply(terms, function(t) t$sd))
  cors <- unlist(lapply(terms, function(t) if (is.null(t$corr)) numeric() else unlist(t$corr)))
  cors <- cors[abs(cors - 1) > 1e-12]
  V <- as.matrix(vcov(m)$cond)
  ds <- DATASETS[[spec$dataset]]
  out <- list(
    name = spec$name, kind = "glmer", dataset = spec$dataset, data_path = ds$path,
    factors = I(ds$factors), formula = spec$formula, family = spec$family,
    link = family(m)$link, nAGQ = 1, REML = FALSE, nobs = nobs(m),
    ngrps = as.list(glmmTMB:::ngrps.glmmTMB(m)$cond),
    df = attr(ll, "df"), logLik = as.numeric(ll), AIC = AIC(m), BIC = BIC(m),
    fixef = named_list(fixef(m)$cond), se = named_list(sqrt(diag(V))),
    vcov = rows_of(V), vcov_names = I(colnames(V)), terms = terms,
    theta = I(unname(getME(m, "theta"))), pdHess = m$sdr$pdHess,
    convergence = m$fit$convergence, message = m$fit$message,
    max_abs_grad = max(abs(m$sdr$gradient.fixed)),
    boundary = any(abs(cors) > 0.999) || min(sds) < 1e-4,
    messages = I(fit$messages), warnings = I(fit$warnings),
    varcorr_print = paste(capture.output(print(VarCorr(m))), collapse = "\n"),
    summary = paste(capture.output(print(summary(m))), collapse = "\n"))
  out$tight <- tight_json(spec, data, m)
  best <- max(out$logLik, if (is.null(out$tight)) -Inf else out$tight$logLik)
  out$lme4 <- lme4_json(spec, data, best)
  out
}

unlink(list.files(FIX_DIR, pattern = "\\.json$", full.names = TRUE))
names_out <- character()
for (spec in SUITE) {
  t0 <- Sys.time()
  out <- tryCatch(fit_one(spec), error = function(e) {
    cat(sprintf("  %-18s FAILED: %s\n", spec$name, conditionMessage(e))); NULL })
  if (is.null(out)) next
  if (!is.finite(out$logLik) || !out$pdHess) {
    cat(sprintf("  %-18s skipped: logLik %s, pdHess %s\n", out$name, out$logLik, out$pdHess)); next }
  write_fixture(out, file.path(FIX_DIR, paste0(out$name, ".json")))
  names_out <- c(names_out, out$name)
  note <- c(if (out$boundary) "boundary", out$messages, out$warnings,
            if (!is.null(out$tight)) sprintf("tight gain %.2g", out$tight$gain),
            if (!is.null(out$lme4)) sprintf("lme4 - glmmTMB %.2g", out$lme4$logLik_gap))
  cat(sprintf("  %-18s logLik %12.4f  %5.1fs %s\n", out$name, out$logLik,
              as.numeric(difftime(Sys.time(), t0, units = "secs")), paste(note, collapse = "; ")))
}
write_fixture(session_info(c("glmmTMB", "TMB", "lme4", "Matrix", "jsonlite"), names_out,
                           names(DATASETS)),
              file.path(FIX_DIR, "_session.json"))
cat(sprintf("done in %.0fs\n", as.numeric(difftime(Sys.time(), t_start, units = "secs"))))
