"""scikit-learn's linear-model losses, checked as they are (docs/functions.md, recipe 2).

``LinearModelLoss(...).loss_gradient(coef, X, y, ...)`` returns (loss, gradient): a loss function
for gradcheck, reached by an attribute path to a module-level object; X and y are fixed data:

    gradcheck fn docs/examples/functions/sk_linear.py:logistic.loss_gradient --shape coef=5 \
        --data X=docs/examples/functions/sk_data.npz:X --data y=docs/examples/functions/sk_data.npz:y \
        --arg l2_reg_strength=0.1
"""

from sklearn._loss.loss import HalfBinomialLoss, HalfSquaredError
from sklearn.linear_model._linear_loss import LinearModelLoss

#: Logistic regression with an intercept: coef has n_features + 1 entries.
logistic = LinearModelLoss(base_loss=HalfBinomialLoss(), fit_intercept=True)
#: Least squares without an intercept: coef has n_features entries.
least_squares = LinearModelLoss(base_loss=HalfSquaredError(), fit_intercept=False)


class L2Bug(LinearModelLoss):
    """A planted bug for the recipe's wrong twin: the gradient's L2 term is 1e-5 too large (the
    size of bug that scipy's check_grad missed)."""

    def gradient(self, coef, X, y, sample_weight=None, l2_reg_strength=0.0, **kw):
        g = super().gradient(coef, X, y, sample_weight, l2_reg_strength, **kw)
        g[:-1] += 1e-5 * l2_reg_strength * coef[:-1]
        return g


logistic_l2_bug = L2Bug(base_loss=HalfBinomialLoss(), fit_intercept=True)
