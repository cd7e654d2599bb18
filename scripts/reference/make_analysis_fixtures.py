#!/usr/bin/python3
"""Reference values for src/analysis from Debian's python3-scipy / python3-statsmodels.

Run: apt-get install -y python3-scipy python3-statsmodels
     /usr/bin/python3 scripts/reference/make_analysis_fixtures.py
Writes test/fixtures/analysis/reference.json (inputs and expected outputs); the tests in
test/analysis/ compare emlab's statistics to it (values 1e-8, p-values 1e-6 relative).
"""
import json
import os
import sys

import numpy as np
import scipy
import scipy.special as sp
import scipy.stats as st
import statsmodels
import statsmodels.api as sm
from statsmodels.stats.proportion import proportion_confint

OUT = os.path.join(os.path.dirname(__file__), "..", "..", "test", "fixtures", "analysis", "reference.json")
rng = np.random.RandomState(20260423)


def fl(a):
    return [float(v) for v in np.asarray(a, dtype=float).ravel()]


# --- special functions, including tails ---------------------------------------------
special = {"betainc": [], "gammainc": [], "gammaincc": [], "gammaln": [], "ndtr": [], "ndtri": [],
           "t_sf": [], "chi2_sf": []}
for a, b, x in [(0.5, 0.5, 0.3), (2, 3, 0.4), (10, 0.5, 0.999), (0.5, 20, 1e-4), (50, 50, 0.5),
                (500, 0.5, 0.9), (1, 1, 0.25), (3.5, 7.25, 0.9), (100, 200, 0.2), (0.1, 0.1, 0.999999)]:
    special["betainc"].append({"a": a, "b": b, "x": x, "value": float(sp.betainc(a, b, x))})
for a, x in [(0.5, 0.01), (0.5, 9.0), (1, 2), (3, 0.5), (10, 30), (2.5, 2.5), (50, 40), (0.5, 400.0), (100, 150)]:
    special["gammainc"].append({"a": a, "x": x, "value": float(sp.gammainc(a, x))})
    special["gammaincc"].append({"a": a, "x": x, "value": float(sp.gammaincc(a, x))})
for x in [0.1, 0.5, 1, 1.5, 3.7, 10, 171.3, 1e-5]:
    special["gammaln"].append({"x": x, "value": float(sp.gammaln(x))})
for x in [-38, -20, -8, -3, -1, 0, 0.3, 1.96, 5, 8.5]:
    special["ndtr"].append({"x": x, "value": float(sp.ndtr(x))})
for p in [1e-300, 1e-20, 1e-8, 0.001, 0.025, 0.3, 0.5, 0.8, 0.975, 0.999999]:
    special["ndtri"].append({"p": p, "value": float(sp.ndtri(p))})
for t, df in [(0.5, 3), (2.0, 10), (-2.0, 10), (5, 4), (40, 30), (3, 1), (1.2, 1000), (12, 200), (0.01, 2)]:
    special["t_sf"].append({"t": t, "df": df, "value": float(st.t.sf(t, df))})
for x, df in [(0.5, 1), (3.84, 1), (10, 3), (100, 4), (300, 10), (0.01, 6), (50, 60)]:
    special["chi2_sf"].append({"x": x, "df": df, "value": float(st.chi2.sf(x, df))})

# --- correlations ------------------------------------------------------------------
def corr_case(name, x, y):
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    n = len(x)
    pr = st.pearsonr(x, y)
    ci95 = pr.confidence_interval(0.95)
    ci90 = pr.confidence_interval(0.9)
    sr = st.spearmanr(x, y)
    rho = float(sr.correlation)

    # Fieller et al. (1957) interval; not in scipy, computed here from the same formula.
    def fieller(level):
        if n <= 3:
            return [-1.0, 1.0]
        h = sp.ndtri(1 - (1 - level) / 2) * np.sqrt(1.06 / (n - 3))
        with np.errstate(divide="ignore"):  # rho = ±1 gives z = ±inf and the interval [±1, ±1]
            z = np.arctanh(rho)
        return [float(np.tanh(z - h)), float(np.tanh(z + h))]

    return {
        "name": name, "x": fl(x), "y": fl(y),
        "pearson": {"r": float(pr.statistic), "p": float(pr.pvalue),
                    "ci95": [float(ci95.low), float(ci95.high)], "ci90": [float(ci90.low), float(ci90.high)]},
        "spearman": {"r": rho, "p": float(sr.pvalue), "ci95": fieller(0.95)},
        "ranks_x": fl(st.rankdata(x)), "ranks_y": fl(st.rankdata(y)),
    }


x = rng.normal(size=20)
corr = [corr_case("normal n=20", x, 0.4 * x + rng.normal(size=20))]
corr.append(corr_case("small n=5", [0.1, 0.4, 0.35, 0.8, 0.9], [0.2, 0.1, 0.5, 0.7, 0.65]))
corr.append(corr_case("n=4 negative", [1, 2, 3, 4], [3.1, 2.5, 2.9, 0.2]))
x = rng.uniform(size=15)
corr.append(corr_case("large r", x, x + 1e-3 * rng.normal(size=15)))
corr.append(corr_case("ties", [1, 2, 2, 3, 3, 3, 4, 5, 5, 6], [2, 1, 3, 3, 5, 4, 4, 6, 6, 6]))
corr.append(corr_case("rates 6 models", [0.87, 0.93, 0.9, 0.65, 0.97, 0.92], [0.96, 1.0, 0.98, 0.0, 0.02, 0.0]))
x = rng.normal(size=300)
corr.append(corr_case("weak n=300", x, 0.05 * x + rng.normal(size=300)))
corr.append(corr_case("n=3", [1, 2, 4], [1, 3, 2]))

# --- chi-square --------------------------------------------------------------------
chi = []
for name, table, correction in [
    ("2x2 yates", [[12, 5], [3, 14]], True),
    ("2x2 no correction", [[12, 5], [3, 14]], False),
    ("2x2 models", [[3, 3], [0, 2]], True),
    ("2x2 |O-E| < 0.5", [[5, 5], [5, 6]], True),
    ("2x2 large", [[1200, 800], [950, 1050]], True),
    ("2x3", [[10, 20, 30], [25, 15, 12]], True),
    ("3x4", [[5, 8, 2, 9], [7, 3, 12, 4], [10, 6, 5, 8]], True),
    ("3x2 tail", [[100, 2], [3, 120], [50, 52]], True),
    ("1x3 df 0", [[4, 5, 6]], True),
]:
    s, p, dof, exp = st.chi2_contingency(np.array(table, dtype=float), correction=correction)
    chi.append({"name": name, "table": table, "correction": correction,
                "statistic": float(s), "p": float(p), "df": int(dof), "expected": [fl(r) for r in exp]})

# --- Wilson ------------------------------------------------------------------------
wil = []
for k, n in [(8, 10), (0, 10), (10, 10), (1, 3), (45, 350), (349, 350), (0, 1), (17, 40)]:
    for level in [0.95, 0.9, 0.99]:
        lo, hi = proportion_confint(k, n, alpha=1 - level, method="wilson")
        wil.append({"k": k, "n": n, "level": level, "ci": [float(lo), float(hi)]})

# --- logistic regression (statsmodels Logit, Newton) -------------------------------
def logit_case(name, X, y, intercept=True):
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    A = sm.add_constant(X, has_constant="add") if intercept else X
    res = sm.Logit(y, A).fit(method="newton", tol=1e-14, maxiter=200, disp=0)
    return {"name": name, "X": [fl(r) for r in X], "y": fl(y), "intercept": intercept,
            "coef": fl(res.params), "se": fl(res.bse), "p": fl(res.pvalues), "llf": float(res.llf)}


logit = []
x = rng.normal(size=40)
y = (rng.uniform(size=40) < 1 / (1 + np.exp(-(0.3 + 1.2 * x)))).astype(float)
logit.append(logit_case("one predictor n=40", x[:, None], y))
X = rng.normal(size=(200, 3))
eta = -0.5 + X @ np.array([1.0, -0.7, 0.2])
y = (rng.uniform(size=200) < 1 / (1 + np.exp(-eta))).astype(float)
logit.append(logit_case("three predictors n=200", X, y))
logit.append(logit_case("three predictors, no intercept", X, y, intercept=False))
# Nearly separable: the classes overlap in only two points, so the MLE exists but is large.
x = np.array([-3, -2.5, -2, -1.6, -1.2, -0.9, -0.4, 0.3, 0.35, 0.8, 1.1, 1.5, 2.0, 2.6, 3.1])
y = np.array([0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 1, 1, 1, 1, 1], dtype=float)
logit.append(logit_case("separable-ish", x[:, None], y))
x = np.array([0.1, 0.4, 0.5, 0.7, 0.9, 1.3, 1.4, 1.9, 2.2, 2.8, 3.0, 3.3])
y = np.array([0, 0, 1, 0, 0, 1, 0, 1, 1, 0, 1, 1], dtype=float)
logit.append(logit_case("small n=12", x[:, None], y))
X = np.column_stack([rng.normal(size=60), rng.binomial(1, 0.4, size=60), rng.uniform(size=60)])
eta = 0.2 + 0.8 * X[:, 0] - 1.1 * X[:, 1] + 0.5 * X[:, 2]
y = (rng.uniform(size=60) < 1 / (1 + np.exp(-eta))).astype(float)
logit.append(logit_case("mixed columns n=60", X, y))

# --- OLS (statsmodels) ---------------------------------------------------------------
ols = []
for name, x, y in [("rates 6 models", [0.87, 0.93, 0.9, 0.65, 0.97, 0.92], [0.96, 1.0, 0.98, 0.0, 0.02, 0.0]),
                   ("line n=8", [0.0, 0.1, 0.2, 0.35, 0.5, 0.6, 0.8, 0.9], [0.05, 0.1, 0.3, 0.3, 0.55, 0.6, 0.7, 0.95])]:
    res = sm.OLS(np.array(y), sm.add_constant(np.array(x)[:, None])).fit()
    ols.append({"name": name, "x": x, "y": y, "coef": fl(res.params), "se": fl(res.bse),
                "p": fl(res.pvalues), "r2": float(res.rsquared)})

# --- quantiles (numpy linear) --------------------------------------------------------
qs = []
for xs in [[3.0, 1.0, 2.0], [0.87, 0.93, 0.9, 0.65, 0.97, 0.92], list(rng.normal(size=11))]:
    for q in [0.0, 0.025, 0.25, 0.5, 0.75, 0.975, 1.0]:
        qs.append({"xs": fl(xs), "q": q, "value": float(np.quantile(xs, q))})

out = {
    "generator": "scripts/reference/make_analysis_fixtures.py",
    "versions": {"python": sys.version.split()[0], "numpy": np.__version__, "scipy": scipy.__version__,
                 "statsmodels": statsmodels.__version__},
    "special": special, "correlation": corr, "chi_square": chi, "wilson": wil, "logistic": logit,
    "ols": ols, "quantile": qs,
}
with open(OUT, "w") as f:
    json.dump(out, f, indent=1)
    f.write("\n")
print("wrote", os.path.normpath(OUT))
