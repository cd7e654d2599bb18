"""Reference values of the judge-agreement statistics (src/rejudge/agreement.ts).

Reads JSON on stdin: {"cases": [{"x": [...], "y": [...], "threshold": t, "ge": bool, "level": 0.95}]}
and writes, per case, Pearson r and its Fisher z interval (scipy.stats.pearsonr
confidence_interval), Spearman rho (scipy.stats.spearmanr) with the Fisher z interval at
variance 1.06/(n-3), and, for the labels score >= t (ge) or score < t, Cohen's kappa
(sklearn.metrics.cohen_kappa_score) and the confusion matrix (sklearn.metrics.confusion_matrix).
"""
import json
import math
import sys

from scipy import stats
from sklearn.metrics import cohen_kappa_score, confusion_matrix


def main():
    cases = json.load(sys.stdin)["cases"]
    out = []
    for c in cases:
        x, y, level = c["x"], c["y"], c.get("level", 0.95)
        n = len(x)
        p = stats.pearsonr(x, y)
        ci = p.confidence_interval(confidence_level=level)
        rho = stats.spearmanr(x, y).statistic
        z = stats.norm.ppf(1 - (1 - level) / 2)
        half = z * math.sqrt(1.06 / (n - 3))
        s_ci = [math.tanh(math.atanh(rho) - half), math.tanh(math.atanh(rho) + half)]
        t = c["threshold"]
        la = [bool(v >= t) if c["ge"] else bool(v < t) for v in x]
        lb = [bool(v >= t) if c["ge"] else bool(v < t) for v in y]
        kappa = float(cohen_kappa_score(la, lb))
        # labels=[True, False]: rows the first judge (label, not), columns the second.
        cm = confusion_matrix(la, lb, labels=[True, False]).tolist()
        out.append(
            {
                "pearson": float(p.statistic),
                "pearson_ci": [float(ci.low), float(ci.high)],
                "spearman": float(rho),
                "spearman_ci": s_ci,
                "kappa": kappa,
                "confusion": cm,
            }
        )
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
