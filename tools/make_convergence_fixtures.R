# lme4's convergence messages where lme2sm's check once disagreed (run from the repo root):
#   Rscript tools/make_convergence_fixtures.R   ->  tests/fixtures/convergence.json
# warpbreaks with an observation-level term: lme4 (1.1-31) gives no warning; lme2sm warned
# with the gradient measured before its final Newton step.
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
wb <- warpbreaks
wb$obs <- factor(seq_len(nrow(wb)))
write.csv(warpbreaks, "tests/fixtures/warpbreaks.csv", row.names = FALSE)
fit <- function(expr) {
  msgs <- character()
  m <- withCallingHandlers(expr, warning = function(w) {
    msgs <<- c(msgs, conditionMessage(w)); invokeRestart("muffleWarning")
  }, message = function(c) {
    msgs <<- c(msgs, conditionMessage(c)); invokeRestart("muffleMessage")
  })
  list(m = m, msgs = c(msgs, m@optinfo$conv$lme4$messages))
}
r <- fit(glmer(breaks ~ wool * tension + (1 | obs), wb, family = poisson))
out <- list(warpbreaks_obs = list(
  formula = "breaks ~ wool * tension + (1 | obs)", family = "poisson",
  logLik = as.numeric(logLik(r$m)), fixef = as.list(fixef(r$m)),
  theta = unname(getME(r$m, "theta")), messages = I(unique(r$msgs))))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/fixtures/convergence.json")
