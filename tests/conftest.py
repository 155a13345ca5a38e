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


def pytest_configure(config):
    config.addinivalue_line("markers", "tensorflow_only: needs TensorFlow as the Keras backend (notebooks, browser)")
    config.addinivalue_line("markers", "backend_independent: uses no Keras backend (files, packaging, NumPy, tf.data "
                                       "loaders, figures): run once, in the TensorFlow stage")
    config.addinivalue_line("markers", "backend_neutral: uses the backend only through vitlib's layers and ops, adding "
                                       "nothing backend-specific (exercise checker, widgets, cost formulas, NumPy "
                                       "analyses): run once, in the TensorFlow stage; the layers' own tests run in all")
