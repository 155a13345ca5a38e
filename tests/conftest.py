import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_collectstart(collector):
    # nbval: compare outputs, not the warnings libraries print to stderr.
    if collector.path is not None and collector.path.suffix == ".ipynb":
        collector.skip_compare += ("stderr",)


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _fresh_keras_session():
    import keras

    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    yield


@pytest.fixture(autouse=True)
def _plain_keras_unless_marked_speed(request, monkeypatch):
    """The suite tests the plain path: the speed layer stays off (VITLIB_SPEED=off, which subprocesses inherit too)
    even where a recipe turns it on. Tests marked ``speed`` test the speed layer itself, with the switch as asked."""
    if request.node.get_closest_marker("speed") is None:
        monkeypatch.setenv("VITLIB_SPEED", "off")
    else:
        monkeypatch.delenv("VITLIB_SPEED", raising=False)


@pytest.fixture
def fresh_exercise_session():
    """The exercise checker remembers tries, hints and solutions per session: each test starts afresh."""
    from vitlib.exercises import checker

    for record in (checker._WRONG_TRIES, checker._HINTS_SHOWN, checker._TRIED, checker._SOLUTION_ASKED):
        record.clear()


def pytest_configure(config):
    config.addinivalue_line("markers", "speed: tests the speed layer (vitlib.speed) itself; every other test runs with it "
                                       "switched off (VITLIB_SPEED=off)")
    config.addinivalue_line("markers", "slow: a minute or more on 2 cores (training to convergence, a fresh interpreter per "
                                       "module): left out of `make check`, run by `make test`")
    config.addinivalue_line("markers", "tensorflow_only: needs TensorFlow as the Keras backend (notebooks, browser)")
    config.addinivalue_line("markers", "backend_independent: uses no Keras backend (files, packaging, NumPy, tf.data "
                                       "loaders, figures): run once, in the TensorFlow stage")
    config.addinivalue_line("markers", "backend_neutral: uses the backend only through vitlib's layers and ops, adding "
                                       "nothing backend-specific (exercise checker, widgets, cost formulas, NumPy "
                                       "analyses): run once, in the TensorFlow stage; the layers' own tests run in all")
