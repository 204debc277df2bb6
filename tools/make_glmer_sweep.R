# glmer sweep: eleven models on R's data (lme4, mlmRev) beyond tests/fixtures/glmer, fitted
# by lme4 with its defaults; writes tests/fixtures/glmer_sweep/lme4.json and each data set
# as CSV (factor levels in R's order in the JSON). Run from the project's root:
#   Rscript tools/make_glmer_sweep.R
outdir <- "tests/fixtures/glmer_sweep"
dir.create(outdir, showWarnings = FALSE)
suppressMessages({library(lme4); library(mlmRev); library(jsonlite)})
data(Contraception, package="mlmRev"); data(Mmmec, package="mlmRev"); data(Arabidopsis, package="lme4")
gt <- grouseticks; gt$cHEIGHT <- as.numeric(scale(gt$HEIGHT))
cb <- cbpp; cb$obs <- factor(seq_len(nrow(cb)))
ar <- Arabidopsis
pen <- Penicillin; pen$d <- round(pen$diameter)
ss <- sleepstudy
models <- list(
 list(name="contra_quad", data="Contraception", df=Contraception, f="use ~ age + I(age^2) + urban + livch + (1|district)", fam="binomial", agq=1),
 list(name="contra_slope", data="Contraception", df=Contraception, f="use ~ age + urban + (urban|district)", fam="binomial", agq=1),
 list(name="contra_agq5", data="Contraception", df=Contraception, f="use ~ age + urban + (1|district)", fam="binomial", agq=5),
 list(name="mmmec_offset", data="Mmmec", df=Mmmec, f="deaths ~ uvb + (1|region) + offset(log(expected))", fam="poisson", agq=1),
 list(name="mmmec_nested", data="Mmmec", df=Mmmec, f="deaths ~ uvb + (1|nation/region) + offset(log(expected))", fam="poisson", agq=1),
 list(name="arab_three", data="Arabidopsis", df=ar, f="total.fruits ~ nutrient + amd + rack + status + (1|reg) + (1|popu) + (1|gen)", fam="poisson", agq=1),
 list(name="cbpp_obs", data="cbpp", df=cb, f="cbind(incidence, size - incidence) ~ period + (1|herd) + (1|obs)", fam="binomial", agq=1),
 list(name="gt_scaled", data="grouseticks", df=gt, f="TICKS ~ YEAR + cHEIGHT + (1|BROOD) + (1|LOCATION)", fam="poisson", agq=1),
 list(name="pen_poisson", data="Penicillin", df=pen, f="d ~ 1 + (1|plate) + (1|sample)", fam="poisson", agq=1),
 list(name="ss_gamma_log", data="sleepstudy", df=ss, f="Reaction ~ Days + (1|Subject)", fam="Gamma(link='log')", agq=1),
 list(name="contra_cloglog", data="Contraception", df=Contraception, f="use ~ age + urban + livch + (1|district)", fam="binomial(link='cloglog')", agq=1)
)
out <- list()
for (m in models) {
  fam <- eval(parse(text=if (grepl("\\(", m$fam)) m$fam else paste0(m$fam, "()")))
  fam <- if (m$fam == "binomial") binomial() else if (m$fam == "poisson") poisson() else fam
  fit <- withCallingHandlers(glmer(as.formula(m$f), data=m$df, family=fam, nAGQ=m$agq),
                             warning=function(w) invokeRestart("muffleWarning"))
  fn <- paste0(paste0(outdir, "/"), m$data, ".csv")
  if (!file.exists(fn)) write.csv(m$df, fn, row.names=FALSE)
  lev <- lapply(m$df[sapply(m$df, is.factor)], levels)
  out[[m$name]] <- list(formula=m$f, family=m$fam, nAGQ=m$agq, data=basename(fn), levels=lev,
    logLik=as.numeric(logLik(fit)), fixef=as.list(fixef(fit)), theta=as.numeric(getME(fit,"theta")),
    messages=fit@optinfo$conv$lme4$messages)
}
out[["_session"]] <- list(R=R.version.string, lme4=as.character(packageVersion("lme4")))
write(toJSON(out, auto_unbox=TRUE, digits=15, null="null", pretty=TRUE), file.path(outdir, "lme4.json"))
