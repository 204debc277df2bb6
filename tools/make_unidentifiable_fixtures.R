# make_unidentifiable_fixtures.R -- lme4's check.conv.hess messages ("Model is nearly
# unidentifiable: very large eigenvalue" / "large eigenvalue ratio") on models where it
# warns and where it does not, for tests/test_unidentifiable.py.
# Run from the project root: Rscript tools/make_unidentifiable_fixtures.R
source("tools/fixture_helpers.R")
suppressPackageStartupMessages(library(lme4))

out_dir <- "tests/fixtures/unidentifiable"
data(Contraception, package = "mlmRev")
contra <- plain(Contraception)
contra$use01 <- as.integer(contra$use == "Y")
contra <- contra[c("woman", "district", "use01", "livch", "age", "urban")]
contra_path <- file.path(out_dir, "data", "contraception.csv")
write_csv_data(contra, contra_path)
contra <- read_csv_data(contra_path, c("woman", "district", "livch", "urban"))

ss <- plain(sleepstudy)
ss$Days2 <- ss$Days * 1000
ss$Days3 <- ss$Days * 10000

fit_case <- function(name, formula, data, family = NULL, REML = TRUE, dataset, factors) {
  w <- character(0)
  m <- withCallingHandlers(
    if (is.null(family)) lmer(as.formula(formula), data, REML = REML)
    else glmer(as.formula(formula), data, family = family),
    warning = function(x) { w <<- c(w, conditionMessage(x)); invokeRestart("muffleWarning") },
    message = function(x) invokeRestart("muffleMessage"))
  d <- m@optinfo$derivs
  list(name = name, formula = formula, family = if (is.null(family)) NULL else family,
       REML = REML, dataset = dataset, factors = I(factors),
       lme4_messages = I(as.character(unlist(m@optinfo$conv$lme4$messages))),
       warnings = I(w), isSingular = isSingular(m),
       hessian_eigenvalues = I(eigen(d$Hessian, symmetric = TRUE, only.values = TRUE)$values),
       theta = I(unname(getME(m, "theta"))))
}

cases <- list(
  fit_case("contraception", "use01 ~ age + I(age^2) + urban + livch + (1 | district)",
           contra, "binomial", dataset = contra_path,
           factors = c("woman", "district", "livch", "urban")),
  fit_case("sleepstudy_days2_reml", "Reaction ~ Days2 + (Days2 | Subject)", ss,
           dataset = "sleepstudy", factors = "Subject"),
  fit_case("sleepstudy_days2_ml", "Reaction ~ Days2 + (Days2 | Subject)", ss, REML = FALSE,
           dataset = "sleepstudy", factors = "Subject"),
  fit_case("sleepstudy_days3_singular", "Reaction ~ Days3 + (Days3 | Subject)", ss,
           dataset = "sleepstudy", factors = "Subject"),
  fit_case("sleepstudy_days2_intercept", "Reaction ~ Days2 + (1 | Subject)", ss,
           dataset = "sleepstudy", factors = "Subject"),
  fit_case("sleepstudy_days", "Reaction ~ Days + (Days | Subject)", ss,
           dataset = "sleepstudy", factors = "Subject")
)
names(cases) <- vapply(cases, `[[`, "", "name")
writeLines(toJSON(cases, auto_unbox = TRUE, digits = NA, pretty = TRUE, null = "null"),
           file.path(out_dir, "cases.json"))
writeLines(toJSON(list(R = R.version.string, lme4 = as.character(packageVersion("lme4"))),
                  auto_unbox = TRUE, pretty = TRUE), file.path(out_dir, "_session.json"))
