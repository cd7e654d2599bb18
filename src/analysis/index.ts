/**
 * emlab/analysis: the statistics and persona analysis behind the report. Everything is
 * pure and deterministic (seeded resampling); documented in docs/analysis.md.
 */
export {
  type Analysis,
  type AnalysisOptions,
  AnalysisOptionsSchema,
  AnalysisSchema,
  analyzeResults,
  pickBothOrders,
} from "./analyze.ts";
export { type ChiSquare, type ChiSquareOptions, chiSquare } from "./chi-square.ts";
export {
  type Correlation,
  type CorrelationOptions,
  correlationP,
  fisherInterval,
  pearson,
  pearsonR,
  rankAverage,
  spearman,
} from "./correlation.ts";
export { type Fold, stratifiedKFold } from "./folds.ts";
export {
  type BootstrapOptions,
  type BootstrapResult,
  bootstrap,
  bootstrapMeanCi,
  type Interval,
  type PairedBootstrapResult,
  pairedBootstrap,
  quantile,
  quantileSorted,
  wilson,
  wilsonZ,
  zCritical,
} from "./intervals.ts";
export { type LinearRegression, linearRegression } from "./linear.ts";
export { type LogisticOptions, type LogisticRegression, logisticRegression } from "./logistic.ts";
export {
  type Classification,
  classifyPersona,
  DEFAULT_PERSONA_THRESHOLDS,
  PERSONA_CLASSES,
  type PersonaClass,
  type PersonaInput,
  type PersonaThresholds,
  PersonaThresholdsSchema,
  SENSITIVITY_SCHEMES,
  type Sensitivity,
  type SensitivityScheme,
  selfReportIndex,
  sensitivity,
} from "./persona.ts";
export { type Random, seededRandom } from "./random.ts";
export {
  chiSquareCdf,
  chiSquareSf,
  erfc,
  gammaP,
  gammaQ,
  incompleteBeta,
  logBeta,
  logGamma,
  normalCdf,
  normalQuantile,
  normalSf,
  studentTCdf,
  studentTSf,
  studentTTwoSided,
} from "./special.ts";
