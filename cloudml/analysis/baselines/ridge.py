"""Ridge regression with an intercept, α chosen by generalised cross-validation (numpy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHAS = np.logspace(-3, 4, 29)


@dataclass
class Ridge:
    """A fitted ridge model on standardised features (training-split mean/std)."""

    weights: np.ndarray
    intercept: float
    alpha: float
    mean: np.ndarray
    scale: np.ndarray

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (X - self.mean) / self.scale @ self.weights + self.intercept


def fit_ridge(X: np.ndarray, y: np.ndarray, alphas=ALPHAS) -> Ridge:
    """Ridge with intercept on features standardised with these (training) rows' statistics."""
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale == 0] = 1.0
    Z, yc = (X - mean) / scale, y - y.mean()
    U, s, Vt = np.linalg.svd(Z, full_matrices=False)
    Uty, n = U.T @ yc, len(y)

    def gcv(alpha: float) -> float:
        shrink = s**2 / (s**2 + alpha)
        resid = yc - U @ (shrink * Uty)
        dof = shrink.sum() + 1  # + intercept
        return n * (resid @ resid) / (n - dof) ** 2 if n > dof else np.inf

    alpha = float(min(alphas, key=gcv))
    weights = Vt.T @ (s / (s**2 + alpha) * Uty)
    return Ridge(weights, float(y.mean()), alpha, mean, scale)
