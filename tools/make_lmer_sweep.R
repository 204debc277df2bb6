# lmer sweep: fourteen models on R's data (nlme, mlmRev, datasets) beyond
# tests/fixtures/models, fitted by lme4 with its defaults; writes
# tests/fixtures/lmer_sweep/lme4.json and each data set as CSV (factor levels in R's
# order in the JSON). Run from the project's root: Rscript tools/make_lmer_sweep.R
suppressMessages({library(lme4); library(mlmRev); library(jsonlite); library(nlme, include.only=character(0))})
outdir <- "tests/fixtures/lmer_sweep"
dir.create(outdir, showWarnings = FALSE)
getd <- function(name, pkg) { e <- new.env(); data(list=name, package=pkg, envir=e); as.data.frame(e[[name]]) }
Ox <- getd("Oxboys","nlme"); Rail <- getd("Rail","nlme"); Erg <- getd("ergoStool","nlme"); Alf <- getd("Alfalfa","nlme")
BW <- getd("BodyWeight","nlme"); MA <- getd("MathAchieve","nlme"); Ass <- getd("Assay","nlme")
CW <- as.data.frame(ChickWeight); CW$Chick <- factor(as.character(CW$Chick)); CW$Diet <- factor(as.character(CW$Diet))
Or <- as.data.frame(Orange); Or$Tree <- factor(as.character(Or$Tree))
CO <- as.data.frame(CO2); CO$Plant <- factor(as.character(CO$Plant))
Gc <- getd("Gcsemv","mlmRev"); Sc <- getd("ScotsSec","mlmRev"); bdf <- getd("bdf","mlmRev")
for (nm in c("Ox","Rail","Erg","Alf","BW","MA","Ass")) { d <- get(nm); for (c in names(d)) if (is.factor(d[[c]])) d[[c]] <- factor(as.character(d[[c]]), levels=levels(d[[c]])); assign(nm, d) }
models <- list(
 list(name="oxboys_quad", df=Ox, data="Oxboys", f="height ~ age + I(age^2) + (age | Subject)", reml=TRUE),
 list(name="rail", df=Rail, data="Rail", f="travel ~ 1 + (1 | Rail)", reml=TRUE),
 list(name="ergo", df=Erg, data="ergoStool", f="effort ~ Type + (1 | Subject)", reml=TRUE),
 list(name="alfalfa_nested", df=Alf, data="Alfalfa", f="Yield ~ Date * Variety + (1 | Block/Variety)", reml=TRUE),
 list(name="bodyweight", df=BW, data="BodyWeight", f="weight ~ Time * Diet + (Time | Rat)", reml=TRUE),
 list(name="mathach", df=MA, data="MathAchieve", f="MathAch ~ SES + Minority + Sex + (SES | School)", reml=TRUE),
 list(name="assay", df=Ass, data="Assay", f="logDens ~ sample * dilut + (1 | Block) + (1 | Block:sample) + (1 | Block:dilut)", reml=TRUE),
 list(name="chick_ml", df=CW, data="ChickWeight", f="weight ~ Time * Diet + (Time | Chick)", reml=FALSE),
 list(name="orange", df=Or, data="Orange", f="circumference ~ age + (1 | Tree)", reml=TRUE),
 list(name="co2_uncorr", df=CO, data="CO2", f="uptake ~ conc + Type * Treatment + (conc || Plant)", reml=TRUE),
 list(name="gcse_ml", df=Gc, data="Gcsemv", f="course ~ gender + (1 | school)", reml=FALSE),
 list(name="scots", df=Sc, data="ScotsSec", f="attain ~ verbal + sex + social + (1 | primary) + (1 | second)", reml=TRUE),
 list(name="bdf_slope", df=bdf, data="bdf", f="langPOST ~ IQ.verb + sex + (IQ.verb | schoolNR)", reml=TRUE),
 list(name="mathach_ml_corr0", df=MA, data="MathAchieve", f="MathAch ~ SES * Sex + (1 | School) + (0 + SES | School)", reml=FALSE)
)
out <- list()
for (m in models) {
  fit <- withCallingHandlers(lmer(as.formula(m$f), data=m$df, REML=m$reml), warning=function(w) invokeRestart("muffleWarning"), message=function(w) invokeRestart("muffleMessage"))
  fn <- file.path(outdir, paste0(m$data, ".csv"))
  # only the columns some model of this data set uses (bdf has 25)
  used <- unique(unlist(lapply(Filter(function(o) o$data == m$data, models), function(o) all.vars(as.formula(o$f)))))
  if (!file.exists(fn)) write.csv(m$df[used], fn, row.names=FALSE)
  lev <- lapply(Filter(is.factor, m$df[all.vars(as.formula(m$f))]), levels)
  out[[m$name]] <- list(formula=m$f, REML=m$reml, data=basename(fn), levels=lev,
    logLik=as.numeric(logLik(fit)), fixef=as.list(fixef(fit)), theta=as.numeric(getME(fit,"theta")),
    sigma=sigma(fit), messages=fit@optinfo$conv$lme4$messages, singular=isSingular(fit))
}
out[["_session"]] <- list(R=R.version.string, lme4=as.character(packageVersion("lme4")))
write(toJSON(out, auto_unbox=TRUE, digits=15, null="null", pretty=TRUE), file.path(outdir, "lme4.json"))
