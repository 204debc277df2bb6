# lme4's optimum with PIRLS converged tightly (tolPwrss = 1e-12) for every glmer fixture.
#
# lme4's default tolPwrss (1e-7) stops PIRLS early enough that log|L|^2 is computed at
# working weights one step behind the modes: the Laplace deviance is off by up to ~1e-3
# and its finite-difference Hessian (the standard errors) by up to ~1 %. lme2sm converges
# PIRLS fully, so these refits are the reference its tests compare with.
#
# Usage: Rscript tools/make_glmer_tight_refs.R  (from the project root)
suppressMessages({library(lme4); library(jsonlite)})
out_dir <- "tests/fixtures/glmer_tight"
dir.create(out_dir, showWarnings = FALSE)
for (path in Sys.glob("tests/fixtures/glmer/*.json")) {
  name <- sub("\\.json$", "", basename(path))
  if (startsWith(name, "_")) next
  fx <- fromJSON(path)
  d <- read.csv(fx$data_path)
  for (f in fx$factors) d[[f]] <- factor(d[[f]])
  fam <- get(fx$family)(link = fx$link)
  ctrl <- glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-12,
                       optCtrl = list(xtol_rel = 1e-12, xtol_abs = 1e-12, ftol_abs = 1e-12,
                                      ftol_rel = 1e-14, maxeval = 1e5))
  args <- list(formula = as.formula(fx$formula), data = d, family = fam, nAGQ = fx$nAGQ,
               control = ctrl)
  if (!is.null(fx$weights)) args$weights <- d[[fx$weights]]
  start <- list(theta = unlist(fx$theta_tight), fixef = unlist(fx$fixef_tight))
  args$start <- start
  m <- suppressWarnings(do.call(glmer, args))
  res <- list(name = name, tolPwrss = 1e-12, logLik = as.numeric(logLik(m)),
              theta = as.list(getME(m, "theta")), fixef = as.list(fixef(m)),
              se = as.list(sqrt(diag(as.matrix(vcov(m))))), deviance = deviance(m),
              lme4 = as.character(packageVersion("lme4")))
  writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE),
             file.path(out_dir, paste0(name, ".json")))
  cat(name, res$logLik, "\n")
}
