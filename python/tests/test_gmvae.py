"""The Python package: scikit-learn's estimator checks, pipelines, pickling, the CLI <-> Python
model equivalence, bad input, Ctrl-C, the GIL, and the README's example.

Run from the repository root after ``pip install ./python``: ``python -m pytest python/tests``.
The CLI tests use ``target/release/gmvae`` (or ``$GMVAE_BIN``) and are skipped, saying why,
when it is not built.
"""

import os
import pickle
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_iris, make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score, make_scorer
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from gmvae import GMVAE

REPO = Path(__file__).resolve().parents[2]

# Small and quick: the checks fit dozens of times on tiny data (one restart each, not the
# default's five).
FAST = dict(hidden_size=32, max_epochs=15, n_threads=1, n_init=1)


def blobs(n=300, seed=0):
    X, y = make_blobs(n_samples=n, centers=3, n_features=4, cluster_std=0.6, random_state=seed)
    return X, y


# Every check scikit-learn runs on a clusterer; none is skipped. (check_array_api_input skips
# itself unless SCIPY_ARRAY_API=1: the estimator takes numpy arrays only.) The default network:
# check_clustering wants ARI > 0.4 on three blobs, which FAST's small one does not always give.
@parametrize_with_checks(
    [GMVAE(n_components=3, random_state=0, max_epochs=30, n_threads=1, n_init=1)]
)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_clusters_separated_blobs():
    X, y = blobs()
    gm = GMVAE(n_components=3, random_state=1, max_epochs=40, n_threads=1, n_init=1).fit(X)
    assert adjusted_rand_score(y, gm.labels_) > 0.9
    assert gm.labels_.shape == (300,)
    assert gm.n_iter_ == 40
    assert np.isfinite(gm.lower_bound_)
    proba = gm.predict_proba(X)
    assert proba.shape == (300, 3) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert (proba.argmax(axis=1) == gm.predict(X)).all()
    assert (gm.predict(X) == gm.labels_).all()
    assert gm.transform(X).shape == (300, 10)
    assert (gm.fit_predict(X) == gm.labels_).all()


def test_same_random_state_same_model():
    X, _ = blobs(120)
    a = GMVAE(n_components=3, random_state=7, **FAST).fit(X)
    b = GMVAE(n_components=3, random_state=7, **FAST).fit(X)
    c = GMVAE(n_components=3, random_state=8, **FAST).fit(X)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    assert a.lower_bound_ == b.lower_bound_
    assert a.lower_bound_ != c.lower_bound_


def test_float32_float64_and_layouts_agree():
    X, _ = blobs(120)
    X32 = X.astype(np.float32)
    gm = GMVAE(n_components=3, random_state=2, **FAST).fit(X32)
    p = gm.predict_proba(X32)
    # float64 input of the same values, and a Fortran-ordered copy, give the same numbers.
    np.testing.assert_array_equal(gm.predict_proba(X32.astype(np.float64)), p)
    np.testing.assert_array_equal(gm.predict_proba(np.asfortranarray(X32)), p)
    again = GMVAE(n_components=3, random_state=2, **FAST).fit(X32.astype(np.float64))
    np.testing.assert_array_equal(again.predict_proba(X32), p)


def test_score_is_the_mean_lower_bound_per_row():
    X, _ = blobs(200)
    gm = GMVAE(n_components=3, random_state=3, **FAST).fit(X)
    s = gm.score(X)
    assert np.isfinite(s)
    # Same seed, same number; the training bound is of the same size (same rows, same model
    # family, one Monte-Carlo sample each).
    assert gm.score(X) == s
    assert abs(s - gm.lower_bound_) < 0.5 * abs(gm.lower_bound_) + 1.0
    # Rows far from the data are less likely.
    assert gm.score(X + 50.0) < s


def test_pipeline_clone_and_grid_search():
    X, y = blobs(160)
    # The default network (FAST's small one merges standardized blobs), and three restarts: a
    # single mixture start merges two blobs for 2 of 5 seeds here, the best bound of three
    # restarts for none of 6 (measured with seeds 0-5).
    gm = GMVAE(random_state=0, max_epochs=40, n_init=3, restart_choice="bound", n_threads=1)
    pipe = Pipeline([("scale", StandardScaler()), ("gmvae", gm)])
    pipe.set_params(gmvae__n_components=3)
    labels = pipe.fit_predict(X)
    assert adjusted_rand_score(y, labels) > 0.8
    c = clone(pipe)
    assert c.get_params()["gmvae__n_components"] == 3
    assert not hasattr(c.named_steps["gmvae"], "labels_")
    search = GridSearchCV(
        pipe,
        {"gmvae__n_components": [2, 3]},
        scoring=make_scorer(adjusted_rand_score),
        cv=2,
    )
    search.fit(X, y)
    assert search.best_params_ == {"gmvae__n_components": 3}


def test_n_init_keeps_the_best_restart():
    X, _ = blobs(150)
    one = GMVAE(n_components=3, random_state=1, **FAST).fit(X)
    fast = dict(FAST, n_init=3, restart_choice="bound")
    three = GMVAE(n_components=3, random_state=1, **fast).fit(X)
    # Restart 0 trains with the seed itself; the kept one has the best bound of the three.
    assert three.lower_bound_ >= one.lower_bound_
    again = GMVAE(n_components=3, random_state=1, **fast).fit(X)
    np.testing.assert_array_equal(again.predict_proba(X), three.predict_proba(X))
    with pytest.raises(ValueError, match="--n-init"):
        GMVAE(**dict(FAST, n_init=0)).fit(X)
    with pytest.raises(ValueError, match="restart_choice must be one of 'bound', 'agreement'"):
        GMVAE(restart_choice="best", **FAST).fit(X)
    with pytest.raises(ValueError, match="likelihood must be one of"):
        GMVAE(likelihood="poisson", **FAST).fit(X)


def test_an_early_confidence_choice_trains_only_the_kept_restart_on():
    X, _ = blobs(150)
    early = dict(FAST, n_init=3, restart_choice="confidence", restart_epochs=5)
    gm = GMVAE(n_components=3, random_state=1, **early).fit(X)
    # The kept restart trained all max_epochs epochs, not the 5 of the choice.
    assert gm.n_iter_ == FAST["max_epochs"]
    with pytest.raises(ValueError, match="--restart-epochs"):
        GMVAE(n_components=3, **dict(early, restart_epochs=FAST["max_epochs"])).fit(X)


def test_the_default_is_the_cli_default_five_restarts_by_agreement():
    X, _ = blobs(150)
    small = dict(hidden_size=32, max_epochs=5, pretrain_epochs=5, n_threads=1)
    default = GMVAE(n_components=3, random_state=2, **small).fit(X)
    assert default.get_params()["n_init"] is None
    spelled = GMVAE(n_components=3, random_state=2, n_init=5, restart_choice="agreement", **small)
    np.testing.assert_array_equal(default.predict_proba(X), spelled.fit(X).predict_proba(X))


def test_pickle_round_trip():
    X, _ = blobs(150)
    gm = GMVAE(n_components=3, random_state=4, **FAST).fit(X)
    back = pickle.loads(pickle.dumps(gm))
    np.testing.assert_array_equal(back.predict_proba(X), gm.predict_proba(X))
    np.testing.assert_array_equal(back.transform(X), gm.transform(X))
    assert back.get_params() == gm.get_params()
    assert back.lower_bound_ == gm.lower_bound_
    assert (back.labels_ == gm.labels_).all()


def test_save_and_load(tmp_path):
    X, _ = blobs(150)
    gm = GMVAE(n_components=3, random_state=4, **FAST).fit(X)
    gm.save(tmp_path / "run")
    assert {"model.safetensors", "config.json"} <= set(os.listdir(tmp_path / "run"))
    back = GMVAE.load(tmp_path / "run")
    assert back.n_components == 3 and back.n_features_in_ == 4 and back.n_iter_ == 15
    np.testing.assert_array_equal(back.predict_proba(X), gm.predict_proba(X))


# -- the CLI and Python agree ------------------------------------------------------------------


def cli():
    path = Path(os.environ.get("GMVAE_BIN", REPO / "target" / "release" / "gmvae"))
    if not path.exists():
        pytest.skip(f"{path} is not built (cargo build --release, or set GMVAE_BIN)")
    return str(path)


def write_csv(path, X):
    # %.9g round-trips float32 exactly, so the CLI reads the values Python trains on.
    np.savetxt(path, X, fmt="%.9g", delimiter=",", header=",".join(f"f{j}" for j in range(X.shape[1])), comments="")


def cli_components(run, data, out):
    subprocess.run(
        [cli(), "predict", "--run", str(run), "--data", str(data), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    return np.loadtxt(out, delimiter=",", skiprows=1)[:, 0].astype(int)


def test_cli_model_loads_in_python_with_the_same_predictions(tmp_path):
    X, _ = blobs(200)
    X = X.astype(np.float32)
    data = tmp_path / "rows.csv"
    write_csv(data, X)
    subprocess.run(
        [cli(), "table", "--data", str(data), "-K", "3", "--epoch", "15", "--hidden-size", "32",
         "--seed", "5", "--test-fraction", "0", "--out-dir", str(tmp_path), "--id", "cli"],
        check=True,
        capture_output=True,
    )
    run = tmp_path / "cli"
    from_cli = cli_components(run, data, tmp_path / "pred.csv")
    loaded = GMVAE.load(run)
    np.testing.assert_array_equal(loaded.predict(X), from_cli)
    assert loaded.n_iter_ == 15 and np.isfinite(loaded.lower_bound_)
    # Trained in Python with the same seed on the same rows: the same model, to the bit.
    fitted = GMVAE(n_components=3, random_state=5, hidden_size=32, max_epochs=15).fit(X)
    np.testing.assert_array_equal(fitted.predict_proba(X), loaded.predict_proba(X))
    assert fitted.lower_bound_ == pytest.approx(loaded.lower_bound_, abs=1e-4)


def test_python_model_predicts_the_same_in_the_cli(tmp_path):
    X, _ = blobs(200, seed=3)
    gm = GMVAE(n_components=3, random_state=6, **FAST).fit(X)
    gm.save(tmp_path / "py")
    data = tmp_path / "rows.csv"
    write_csv(data, X.astype(np.float32))
    from_cli = cli_components(tmp_path / "py", data, tmp_path / "pred.csv")
    np.testing.assert_array_equal(from_cli, gm.predict(X.astype(np.float32)))


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, word", [(np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "inf")]
)
def test_non_finite_values_name_row_and_column(value, word):
    X, _ = blobs(60)
    X[7, 2] = value
    with pytest.raises(ValueError, match=rf"X: row 7, column 2 is {word}"):
        GMVAE(n_components=3, **FAST).fit(X)
    gm = GMVAE(n_components=3, random_state=0, **FAST).fit(blobs(60)[0])
    with pytest.raises(ValueError, match=rf"row 7, column 2 is {word}"):
        gm.predict(X)


def test_too_large_for_float32():
    X, _ = blobs(60)
    X[3, 1] = 1e300
    with pytest.raises(ValueError, match=r"row 3, column 1 is 1e300, too large for 32-bit"):
        GMVAE(n_components=3, **FAST).fit(X)


@pytest.mark.parametrize(
    "X, pattern",
    [
        (np.zeros(10), "Expected 2D array"),
        (np.zeros((0, 3)), "0 sample"),
        (np.zeros((3, 0)), "0 feature"),
        (np.zeros((2, 2, 2)), "dim 3"),
        (np.zeros((1, 3)), "1 sample"),
    ],
)
def test_bad_shapes(X, pattern):
    with pytest.raises(ValueError, match=pattern):
        GMVAE(**FAST).fit(X)


def test_feature_count_must_match_fit():
    X, _ = blobs(60)
    gm = GMVAE(n_components=3, random_state=0, **FAST).fit(X)
    for method in (gm.predict, gm.predict_proba, gm.transform, gm.score):
        with pytest.raises(ValueError, match="X has 3 features, but GMVAE is expecting 4"):
            method(X[:, :3])


def test_not_fitted():
    for method in ("predict", "predict_proba", "transform", "score", "save"):
        with pytest.raises(NotFittedError):
            getattr(GMVAE(), method)(np.zeros((4, 2)))


def test_bad_parameters_give_the_cli_message():
    X, _ = blobs(60)
    with pytest.raises(ValueError, match="--k must be"):
        GMVAE(n_components=0, **FAST).fit(X)
    with pytest.raises(ValueError, match="--learning-rate must be > 0"):
        GMVAE(learning_rate=-1.0, **FAST).fit(X)
    with pytest.raises(ValueError, match="random_state must be >= 0"):
        GMVAE(random_state=-1, **FAST).fit(X)
    with pytest.raises(ValueError, match="bernoulli"):
        GMVAE(n_components=3, likelihood="bernoulli", scale="none", **FAST).fit(X * 10)


def test_load_missing_run_dir(tmp_path):
    with pytest.raises(ValueError, match="config.json"):
        GMVAE.load(tmp_path / "nothing")


# -- Ctrl-C, the GIL, progress -----------------------------------------------------------------


def long_fit():
    X, _ = blobs(2000)
    return GMVAE(n_components=3, random_state=0, max_epochs=10_000, n_threads=1, n_init=1), X


def test_ctrl_c_stops_training_and_leaves_it_unfitted():
    gm, X = long_fit()
    # Python keeps SIGINT ignored when it starts so (a background job of a non-interactive
    # shell does): Ctrl-C's own handler, as an interactive session has it.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        main = threading.main_thread().ident
        timer = threading.Timer(1.0, lambda: signal.pthread_kill(main, signal.SIGINT))
        timer.start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            gm.fit(X)
        assert time.monotonic() - started < 30
    finally:
        signal.signal(signal.SIGINT, previous)
    with pytest.raises(NotFittedError):
        gm.predict(X)


def test_fit_releases_the_gil():
    gm, X = long_fit()
    gm.set_params(max_epochs=30)
    ticks = []
    done = threading.Event()

    def tick():
        while not done.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.01)

    t = threading.Thread(target=tick)
    t.start()
    started = time.monotonic()
    gm.fit(X)
    done.set()
    t.join()
    elapsed = time.monotonic() - started
    during = [s for s in ticks if started < s < started + elapsed]
    # With the GIL held, the other thread would not run at all while Rust trains.
    assert len(during) > 0.2 * elapsed / 0.01, (len(during), elapsed)


def test_verbose_prints_one_line_per_epoch(capsys):
    X, _ = blobs(60)
    GMVAE(n_components=3, verbose=1, random_state=0, **FAST).fit(X)
    out = capsys.readouterr().out
    assert len(re.findall(r"^epoch \d+/15 lower bound", out, re.M)) == 15
    GMVAE(n_components=3, verbose=0, random_state=0, **FAST).fit(X)
    assert capsys.readouterr().out == ""


def test_iris_example_beats_chance():
    X, y = load_iris(return_X_y=True)
    labels = GMVAE(n_components=3, random_state=1, n_threads=1).fit_predict(X)
    assert adjusted_rand_score(y, labels) > 0.3


# -- the README ----------------------------------------------------------------------------


def test_readme_python_example_runs(tmp_path, monkeypatch):
    # The example saves a run directory into the working directory.
    monkeypatch.chdir(tmp_path)
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Python", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "README's Python section has a ```python block"
    for code in blocks:
        exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "iris-run" / "model.safetensors").exists()
