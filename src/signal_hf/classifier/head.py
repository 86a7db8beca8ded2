"""A multinomial logistic-regression head fitted by L-BFGS (scipy), over a fixed class set.

The ``probe`` and ``setfit`` backends put this head on frozen (or contrastively tuned) sentence
embeddings. It minimises the same objective as scikit-learn's ``LogisticRegression`` (L2 penalty
``||W||² / 2`` plus ``C`` times the summed, optionally class-balanced cross-entropy, bias
unpenalised; ``class_weight="balanced"`` weighs row i by ``n / (K · n_{y_i})`` over the K classes
present, as scikit-learn does), but always over *all* task classes: at 10 % of a 0.1 % pool a class can be missing from L, and scikit-learn would then
drop its column, leaving no probability (and no log-probability) for it. Float64 and a zero start
make the fit deterministic.
"""

from __future__ import annotations

import torch

__all__ = ["LogisticHead", "select_c", "fit_head"]


class LogisticHead:
    """``softmax(W h + b)`` with ``W, b`` fitted on ``(h, y)``.

    Args:
        num_labels: number of classes C (columns of the output, whatever ``y`` contains).
        C: inverse L2 strength, as in scikit-learn (larger = weaker penalty).
        class_weight: ``balanced`` (a small, skewed L does not collapse to its majority class) or
            ``none``.
        max_iter: L-BFGS iterations.
    """

    def __init__(self, num_labels: int, *, C: float = 1.0, class_weight: str = "balanced", max_iter: int = 500):
        self.num_labels = num_labels
        self.C = C
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.weight: torch.Tensor | None = None
        self.bias: torch.Tensor | None = None

    def fit(self, h: torch.Tensor, y: torch.Tensor) -> "LogisticHead":
        import numpy as np
        from scipy.optimize import minimize

        x = h.double().numpy()
        y = torch.as_tensor(y, dtype=torch.long).numpy()
        n, d = x.shape
        C = self.num_labels
        onehot = np.zeros((n, C))
        onehot[np.arange(n), y] = 1.0
        if self.class_weight == "balanced":
            counts = np.bincount(y, minlength=C).astype(float)
            onehot *= (n / ((counts > 0).sum() * counts[y]))[:, None]  # rows carry their weight
        w = onehot.sum(1, keepdims=True)  # each row's weight (1 without balancing)

        def objective(theta):
            W, b = theta[: C * d].reshape(C, d), theta[C * d :]
            z = x @ W.T + b
            z -= z.max(1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(1, keepdims=True))
            resid = w * np.exp(logp) - onehot  # d (weighted loss) / d logits
            loss = -self.C * (onehot * logp).sum() + 0.5 * (W * W).sum()
            grad = np.concatenate([(self.C * resid.T @ x + W).ravel(), self.C * resid.sum(0)])
            return loss, grad

        # scipy's L-BFGS-B, as scikit-learn's lbfgs solver uses; analytic gradient, zero start.
        res = minimize(objective, np.zeros(C * d + C), jac=True, method="L-BFGS-B", options={"maxiter": self.max_iter, "gtol": 1e-6})
        self.weight = torch.from_numpy(res.x[: C * d].reshape(C, d).copy())
        self.bias = torch.from_numpy(res.x[C * d :].copy())
        return self

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        """``(n, C)`` float32 logits."""
        if self.weight is None:
            raise RuntimeError("LogisticHead.logits called before fit")
        return (h.double() @ self.weight.T + self.bias).float()


def _log_loss(head: LogisticHead, h: torch.Tensor, y: torch.Tensor) -> float:
    return float(torch.nn.functional.cross_entropy(head.logits(h).double(), y, reduction="sum"))


def select_c(h: torch.Tensor, y: torch.Tensor, num_labels: int, grid: list[float], *, folds: int = 5, class_weight: str = "balanced") -> float:
    """The ``C`` of ``grid`` with the lowest stratified k-fold cross-validated log-loss on ``(h, y)``.

    Only the labeled set is used (never the test set). ``k = min(folds, rows of the rarest class)``;
    with fewer than 2 rows in some class there is nothing to validate on and the grid's value
    closest to 1 (scikit-learn's default) is returned. Folds are seeded, so the choice is reproducible.
    """
    from sklearn.model_selection import StratifiedKFold

    y = torch.as_tensor(y, dtype=torch.long)
    counts = torch.bincount(y)
    k = min(folds, int(counts[counts > 0].min())) if len(y) else 0
    if k < 2 or int((counts > 0).sum()) < 2:
        return min(grid, key=lambda c: abs(c - 1.0))
    splits = list(StratifiedKFold(n_splits=k, shuffle=True, random_state=0).split(h.numpy(), y.numpy()))
    losses = []
    for c in grid:
        total = 0.0
        for tr, va in splits:
            tr_t, va_t = torch.as_tensor(tr), torch.as_tensor(va)
            total += _log_loss(LogisticHead(num_labels, C=c, class_weight=class_weight).fit(h[tr_t], y[tr_t]), h[va_t], y[va_t])
        losses.append(total)
    return grid[min(range(len(grid)), key=losses.__getitem__)]  # ties → the earlier (stronger penalty)


def fit_head(config, num_labels: int, h: torch.Tensor, y: torch.Tensor) -> LogisticHead:
    """The head of ``probe``/``setfit`` under a :class:`~signal_hf.config.ClassifierConfig`:
    ``probe_c`` (or C chosen by cross-validation on L when it is ``None``) and ``probe_class_weight``."""
    cw = config.probe_class_weight
    c = config.probe_c if config.probe_c is not None else select_c(h, y, num_labels, list(config.probe_c_grid), class_weight=cw)
    return LogisticHead(num_labels, C=c, class_weight=cw).fit(h, y)
