# lme4's answers for formulas with R's comparisons inside I() (tests/test_formula_comparisons.py).
#
# The bacteria data (MASS) are written to tests/fixtures/bacteria.csv and read back, so
# both sides see the same columns; trt keeps MASS's level order (placebo, drug, drug+).
# Besides lme4's default fit, the glmer is refitted with PIRLS converged tightly
# (tolPwrss = 1e-12, as tools/make_glmer_tight_refs.R): lme2sm converges PIRLS fully.
#
# Usage: Rscript tools/make_comparison_fixtures.R  (from the project root)
suppressMessages({library(lme4); library(jsonlite)})
data(bacteria, package = "MASS")
write.csv(bacteria, "tests/fixtures/bacteria.csv", row.names = FALSE)
d <- read.csv("tests/fixtures/bacteria.csv")
d$trt <- factor(d$trt, levels = c("placebo", "drug", "drug+"))
d$y <- factor(d$y)
f <- y ~ trt + I(week > 2) + (1 | ID)
m <- glmer(f, d, binomial)
tight <- glmerControl(optimizer = "nloptwrap", tolPwrss = 1e-12,
                      optCtrl = list(xtol_rel = 1e-12, xtol_abs = 1e-12, ftol_abs = 1e-12,
                                     ftol_rel = 1e-14, maxeval = 1e5))
mt <- suppressWarnings(glmer(f, d, binomial, control = tight,
                             start = list(theta = getME(m, "theta"), fixef = fixef(m))))
s <- read.csv("lme2sm/datasets/sleepstudy.csv")
ml <- lmer(Reaction ~ I(Days > 4) + (1 | Subject), s)
one <- function(m) list(logLik = as.numeric(logLik(m)), fixef = as.list(fixef(m)),
                        theta = as.list(getME(m, "theta")))
res <- list(
  bacteria = one(m), bacteria_tight = one(mt), sleepstudy = one(ml),
  names = list(
    I = colnames(model.matrix(~ I(week > 2), d)),
    bare = colnames(model.matrix(~ (week > 2), d)),
    mixed = colnames(model.matrix(~ I(Days + 1 > 2 * 2) + !(Days > 3) + I(Days > 2 & Days < 7), s))
  ),
  lme4 = as.character(packageVersion("lme4")))
writeLines(toJSON(res, auto_unbox = TRUE, digits = NA, pretty = TRUE),
           "tests/fixtures/comparisons.json")
print(res$bacteria$logLik, digits = 12); print(res$bacteria_tight$logLik, digits = 12)
