# Agreement sweep (emmeans on lmer): writes tests/fixtures/emm_sweep.json
suppressMessages({library(lme4); library(emmeans); library(jsonlite)})
out <- list()
m <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
d <- sleepstudy; d$Dayf <- factor(ifelse(d$Days < 5, "early", "late"))
m2 <- lmer(Reaction ~ Dayf + (1 | Subject), d)
for (ddf in c("kenward-roger", "satterthwaite")) {
  e <- as.data.frame(summary(emmeans(m2, "Dayf", lmer.df = ddf), infer = TRUE))
  out[[paste0("dayf_", ddf)]] <- e
}
write_json(out, "tests/fixtures/emm_sweep.json", digits = NA)
