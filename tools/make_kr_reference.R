# Reference numbers for lme2sm's Kenward-Roger, emmeans and Satterthwaite tables
# (tests/test_kenward_roger.py, tests/test_emmeans.py): lmerTest 3.1-3 / pbkrtest 0.5.2
# / emmeans 1.8.4 on balanced and unbalanced data. Run from the project root:
#   Rscript tools/make_kr_reference.R
# Writes tests/fixtures/kr_reference.json. Rows dropped (unbalanced versions) are
# 1-based row numbers of the CSVs in lme2sm/datasets.
suppressMessages({library(lmerTest); library(pbkrtest); library(emmeans); library(jsonlite)})
d <- "lme2sm/datasets/"
rd <- function(n) read.csv(paste0(d, n, ".csv"), stringsAsFactors=TRUE)
Machines <- rd("Machines"); Machines$Worker <- factor(Machines$Worker)
s <- rd("sleepstudy"); s$Subject <- factor(s$Subject); drop_sleep <- c(1,5,20,33,34,80,100,101,150); s <- s[-drop_sleep,]
cake <- rd("cake"); cake$replicate <- factor(cake$replicate)
models <- list(
  oats = list("yield ~ nitro * Variety + (1|Block/Variety)", rd("Oats"), "Variety", NULL),
  machines = list("score ~ Machine + (Machine|Worker)", Machines, "Machine", NULL),
  machines2 = list("score ~ Machine + (1|Worker) + (1|Worker:Machine)", Machines[-c(1,2,20,33),], "Machine", c(1,2,20,33)),
  sleep = list("Reaction ~ Days + (Days|Subject)", s, NULL, drop_sleep),
  cake = list("angle ~ recipe * temp + (1|recipe:replicate)", cake, "recipe", NULL),
  orth = list("distance ~ age * Sex + (age|Subject)", rd("Orthodont"), "Sex", NULL)
)
out <- list()
for (nm in names(models)) {
  x <- models[[nm]]
  m <- lmer(as.formula(x[[1]]), x[[2]])
  r <- list(formula=x[[1]], theta=unname(getME(m, "theta")), REMLcrit=REMLcrit(m), coef_kr=as.data.frame(coef(summary(m, ddf="Kenward-Roger"))),
     vcov_adj=as.matrix(vcovAdj(m)), anova_kr=as.data.frame(anova(m, ddf="Kenward-Roger")),
     coef_satt=as.data.frame(coef(summary(m))))
  r$drop <- x[[4]]
  if (!is.null(x[[3]])) {
    e <- emmeans(m, x[[3]])
    r$emm <- as.data.frame(e)
    for (a in c("tukey","bonferroni","holm","none")) r[[paste0("pairs_",a)]] <- as.data.frame(pairs(e, adjust=a))
  }
  out[[nm]] <- r
}
# emmeans with a by factor, two factors (18 means), Satterthwaite df: temperature as a factor
cake$tf <- factor(cake$temp)
m2 <- lmer(angle ~ recipe * tf + (1|recipe:replicate), cake)
e2 <- emmeans(m2, ~ recipe | tf)
out$cake_by <- list(formula="angle ~ recipe * tf + (1|recipe:replicate)", theta=unname(getME(m2, "theta")), emm=as.data.frame(e2), pairs_tukey=as.data.frame(pairs(e2)))
e3 <- emmeans(m2, ~ recipe * tf)
out$cake_two <- list(formula="angle ~ recipe * tf + (1|recipe:replicate)", theta=unname(getME(m2, "theta")), emm=as.data.frame(e3)[1:5,], pairs_tukey=as.data.frame(pairs(e3))[1:10,])
e4 <- emmeans(m2, ~ recipe, lmer.df="satterthwaite")
out$cake_satt <- list(formula="angle ~ recipe * tf + (1|recipe:replicate)", theta=unname(getME(m2, "theta")), emm=as.data.frame(e4), pairs_tukey=as.data.frame(pairs(e4)))
write(toJSON(out, digits=NA, rownames=TRUE, matrix="rowmajor", auto_unbox=TRUE), "tests/fixtures/kr_reference.json")
