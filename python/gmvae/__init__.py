"""Deep unsupervised clustering with Gaussian-mixture VAEs (Dilokthanakul et al. 2016,
arXiv:1611.02648) as a scikit-learn estimator, on the Rust core of the ``gmvae`` CLI.

>>> from gmvae import GMVAE
>>> labels = GMVAE(n_components=3, random_state=1).fit_predict(X)

The model is the CLI's run-directory format (``model.safetensors`` + ``config.json``): a model
trained by ``gmvae table`` loads with :meth:`GMVAE.load`, and :meth:`GMVAE.save` writes a
directory that ``gmvae predict --run`` reads.
"""

import json
import os
import tempfile
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

from . import _gmvae

__all__ = ["GMVAE"]

# Estimator parameter -> the option it sets (opts.json's field; `table.` for the table preset's
# own settings). None leaves `gmvae table`'s default.
_OPTION_OF = {
    "n_components": "K",
    "hidden_size": "hidden_size",
    "x_size": "x_size",
    "w_size": "w_size",
    "likelihood": "table.likelihood",
    "scale": "table.scale",
    "objective": "objective",
    "pretrain_epochs": "pretrain_epochs",
    "n_init": "n_init",
    "restart_choice": "restart_choice",
    "restart_epochs": "restart_epochs",
    "max_epochs": "epoch",
    "plateau_epochs": "plateau_epochs",
    "plateau_tol": "plateau_tol",
    "learning_rate": "learning_rate",
}

# The words of each word-valued option, by opts.json field (the CLI's own list): a wrong word
# is named by its parameter here, not left to the options reader.
_CHOICES = dict(_gmvae.word_choices())

# Rows per step when batch_size="auto": the table preset's batch, or all rows of a smaller set.
_AUTO_BATCH = 100


class GMVAE(ClusterMixin, TransformerMixin, BaseEstimator):
    """Gaussian-mixture VAE clustering (the ``gmvae table`` preset).

    Parameters left as None take ``gmvae table``'s default (``gmvae table --help``).

    Parameters
    ----------
    n_components : int, default=10
        K, the number of mixture components (clusters).
    hidden_size : int, optional
        H, the hidden width of every network.
    x_size, w_size : int, optional
        Dx and Dw, the sizes of the latents x and w.
    likelihood : {"auto", "gaussian", "bernoulli"}, optional
        p(y|x); auto = bernoulli when every scaled value is in [0, 1].
    scale : {"auto", "none", "standardize", "minmax"}, optional
        Scaling fitted on the training rows and stored with the model.
    objective : {"v1", "v2"}, optional
        The paper's v1 objective (q(z|y) head) or upstream's version2 (p(z|x,w)).
    pretrain_epochs : int, optional
        Autoencoder epochs and a mixture fit on its codes before training (0 = a random start).
    n_init : int, optional
        Restarts from seeds derived from ``random_state``, one of which is kept (no labels are
        used); ``gmvae table``'s default is 5. Use 1 for a single, 5x quicker fit.
    restart_choice : {"agreement", "bound", "confidence"}, optional
        Which restart is kept: the one whose clustering of the training rows agrees best with
        the others' (mean adjusted Rand index; ``gmvae table``'s default), the one with the
        best training lower bound, or the one most confident on the training rows (highest
        mean of max_k q(z=k|y)).
    restart_epochs : int, optional
        Compare the restarts after this many epochs and train only the kept one on to
        ``max_epochs`` (0, the default: every restart trains all epochs).
    max_epochs : int, optional
        Epochs of training (the CLI's ``--epoch``).
    plateau_epochs, plateau_tol : optional
        Stop once the lower bound improved by less than ``plateau_tol`` (relative) over
        ``plateau_epochs`` epochs (0 = never).
    learning_rate : float, optional
        Adam's learning rate.
    batch_size : int or "auto", default="auto"
        Rows per step; auto = min(100, n_samples).
    random_state : int, RandomState instance or None, default=None
        Seeds every random source: an int is the CLI's ``--seed`` (the same model every time,
        and the model ``gmvae table --seed`` trains on the same rows); None draws a seed.
    n_threads : int, optional
        CPU threads of the kernels (default: all cores). candle keeps one pool per process, so
        the first model that runs fixes the count; a later, different value warns. With
        ``n_init`` > 1 and one thread, restarts train side by side on the cores.
    verbose : int, default=0
        Print the run's log (one line per epoch) when > 0.

    Attributes
    ----------
    labels_ : ndarray of shape (n_samples,)
        The component of each training row.
    lower_bound_ : float
        The training lower bound per row at the last epoch (of the kept restart).
    n_iter_ : int
        Epochs trained.
    n_features_in_ : int
        Features seen in fit.
    """

    def __init__(
        self,
        n_components=10,
        *,
        hidden_size=None,
        x_size=None,
        w_size=None,
        likelihood=None,
        scale=None,
        objective=None,
        pretrain_epochs=None,
        n_init=None,
        restart_choice=None,
        restart_epochs=None,
        max_epochs=None,
        plateau_epochs=None,
        plateau_tol=None,
        learning_rate=None,
        batch_size="auto",
        random_state=None,
        n_threads=None,
        verbose=0,
    ):
        self.n_components = n_components
        self.hidden_size = hidden_size
        self.x_size = x_size
        self.w_size = w_size
        self.likelihood = likelihood
        self.scale = scale
        self.objective = objective
        self.pretrain_epochs = pretrain_epochs
        self.n_init = n_init
        self.restart_choice = restart_choice
        self.restart_epochs = restart_epochs
        self.max_epochs = max_epochs
        self.plateau_epochs = plateau_epochs
        self.plateau_tol = plateau_tol
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.random_state = random_state
        self.n_threads = n_threads
        self.verbose = verbose

    # -- options -------------------------------------------------------------------------------

    def _options(self, n_samples, out_dir):
        """The CLI's options (opts.json) for this estimator's parameters."""
        opts = json.loads(_gmvae.default_options())
        for param, option in _OPTION_OF.items():
            value = getattr(self, param)
            if value is None:
                continue
            if isinstance(value, (np.integer, np.floating)):
                value = value.item()
            if option in _CHOICES and value not in _CHOICES[option]:
                raise ValueError(
                    f"{param} must be one of {', '.join(map(repr, _CHOICES[option]))}, "
                    f"found {value!r}"
                )
            if option.startswith("table."):
                opts["table"][option[len("table.") :]] = value
            else:
                opts[option] = value
        if self.batch_size == "auto":
            opts["batch_size"] = min(_AUTO_BATCH, n_samples)
        else:
            opts["batch_size"] = self.batch_size
        opts["seed"] = _seed(self.random_state)
        # fit(X) trains on every row: the held-out split is the CLI's, for its scores.
        opts["table"]["test_fraction"] = 0.0
        opts["dump_size"] = 0
        opts["out_dir"] = out_dir
        opts["id"] = "fit"
        return opts

    def _log(self):
        return print if self.verbose else None

    def _settle_threads(self):
        """candle's kernel threads are fixed for the process by the first model that runs."""
        if self.n_threads is None:
            return
        used = _gmvae.threads(self.n_threads)
        if used != self.n_threads:
            warnings.warn(
                f"n_threads={self.n_threads} has no effect: this process's kernels already run "
                f"on {used} threads, fixed by the first model used (give n_threads to that one, "
                "or set RAYON_NUM_THREADS before Python starts)",
                RuntimeWarning,
                stacklevel=3,
            )

    # -- fitting -------------------------------------------------------------------------------

    def fit(self, X, y=None):
        """Trains on the rows of X (y is ignored)."""
        for attr in ("model_", "labels_", "lower_bound_", "n_iter_"):
            self.__dict__.pop(attr, None)
        X = validate_data(
            self,
            X,
            reset=True,
            dtype=[np.float32, np.float64],
            order="C",
            ensure_all_finite=False,
        )
        if X.shape[0] < 2:
            raise ValueError(
                f"X has {X.shape[0]} sample(s); GMVAE needs at least 2 "
                "(BatchNorm needs batch statistics); n_samples=1 is too few"
            )
        self._settle_threads()
        with tempfile.TemporaryDirectory(prefix="gmvae-fit-") as tmp:
            opts = self._options(X.shape[0], tmp)
            out = _gmvae.fit(X, json.dumps(opts), self._log(), self.n_threads)
            model = _gmvae.Model.load(out["run_dir"])
        self.model_ = model
        self.lower_bound_ = float(out["lower_bound"])
        self.n_iter_ = int(out["n_iter"])
        self.labels_ = self._posterior(X)[0].argmax(axis=1)
        return self

    # -- using the model -----------------------------------------------------------------------

    def _check(self, X):
        check_is_fitted(self, "model_")
        self._settle_threads()
        return validate_data(
            self,
            X,
            reset=False,
            dtype=[np.float32, np.float64],
            order="C",
            ensure_all_finite=False,
        )

    def _posterior(self, X):
        return self.model_.posterior(X, n_threads=self.n_threads)

    def predict_proba(self, X):
        """The cluster posterior of each row, shape (n_samples, n_components): q(z|y) for the
        v1 objective, p(z | mean x, mean w) for v2."""
        return self._posterior(self._check(X))[0]

    def predict(self, X):
        """The most probable component of each row."""
        return self.predict_proba(X).argmax(axis=1)

    def transform(self, X):
        """The q(x|y) mean of each row, shape (n_samples, x_size): the embedding."""
        return self._posterior(self._check(X))[1]

    def score(self, X, y=None):
        """The mean evidence lower bound per row of X (higher is better)."""
        X = self._check(X)
        seed = _seed(self.random_state)
        return self.model_.lower_bound(X, seed=seed, n_threads=self.n_threads)

    # -- models on disk ------------------------------------------------------------------------

    def save(self, run_dir):
        """Writes the model as a run directory (``model.safetensors``, ``config.json``) that
        ``gmvae predict --run`` and :meth:`GMVAE.load` read."""
        check_is_fitted(self, "model_")
        self.model_.save(os.fspath(run_dir))
        return self

    @classmethod
    def load(cls, run_dir):
        """The model of a run directory (``gmvae table``'s output, ``gmvae export``'s, or
        :meth:`save`'s) as a fitted estimator; ``labels_`` is left unset (no training rows)."""
        model = _gmvae.Model.load(os.fspath(run_dir))
        config = json.loads(model.config_json)
        est = cls(
            n_components=config["K"],
            hidden_size=config.get("hidden_size"),
            x_size=config.get("x_size"),
            w_size=config.get("w_size"),
            objective=config.get("objective"),
        )
        est.model_ = model
        est.n_features_in_ = model.n_features
        est.n_iter_ = model.epoch
        last = _gmvae.final_lower_bound(os.fspath(run_dir))
        est.lower_bound_ = float("nan") if last is None else last[1]
        if config.get("columns"):
            est.feature_names_in_ = np.asarray(config["columns"], dtype=object)
        return est

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        return tags


def _seed(random_state):
    """The CLI's --seed for ``random_state``: an int is the seed itself (random_state=1 trains
    what ``gmvae table --seed 1`` trains); None or a RandomState draws one."""
    if isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"random_state must be >= 0, found {random_state}")
        return int(random_state)
    return int(check_random_state(random_state).randint(2**31 - 1))
