"""A SciPy-style loss with fixed data: ridge regression, f(w, X, y) with its gradient.

X and y are data (never differentiated), read from ridge.npz; only w is checked:

    gradcheck fn configs/functions/ridge.py:loss --grad grad --shape w=5 \
        --data X=configs/functions/ridge.npz:X --data y=configs/functions/ridge.npz:y

(`scipy.optimize.minimize(loss, w0, args=(X, y), jac=grad)` calls them the same way.)
"""

ALPHA = 0.1


def loss(w, X, y):
    """0.5·|X w − y|² / n + 0.5·α·|w|².  w: (D,), X: (n, D), y: (n,) -> float."""
    r = X @ w - y
    return 0.5 * float(r @ r) / len(y) + 0.5 * ALPHA * float(w @ w)


def grad(w, X, y):
    """Xᵀ(X w − y) / n + α·w: (D,)."""
    return X.T @ (X @ w - y) / len(y) + ALPHA * w
