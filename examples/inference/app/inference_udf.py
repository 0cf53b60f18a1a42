"""The near-line inference example's UDFs: iris species from four features.

Both functions load the model in ``open()`` from the file named by the job
parameter ``inference.model`` (PyFlink's ``FunctionContext.get_job_parameter``)
and return one JSON object per row::

    {"id": "r42", "key": "u0007", "label": 2, "species": "virginica",
     "score": 0.9731, "model_version": "v2"}

- ``predict``: a scalar UDF, one row per call;
- ``predict_batch``: the same as a Pandas UDF, one ``predict_proba`` per batch;
- ``model_info``: the loaded model's version, kind and path (for the Go side).

The model file is a joblib dump written by ``train.py`` (a dict with the
version beside the estimator). A file that is missing, is not a joblib file,
or holds something else fails ``open()`` with ``ModelLoadError`` naming the
file. joblib files are pickles: load only model files you made.
"""

import json
import os
import threading

from pyflink.table import DataTypes
from pyflink.table.udf import ScalarFunction, udf

FORMAT = "pyudf-inference-model/1"
PARAMETER = "inference.model"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]

_lock = threading.Lock()
_cache = {}  # (path, size, mtime_ns) -> Model: one load per file per interpreter


class ModelLoadError(RuntimeError):
    """A model file that cannot be loaded; the message names the file."""


class Model:
    """A loaded model: its version, kind, class names and estimator."""

    def __init__(self, path, saved):
        self.path = path
        self.version = str(saved["version"])
        self.kind = str(saved.get("kind", ""))
        self.classes = list(saved["classes"])
        self.estimator = saved["model"]

    def predict(self, ids, keys, matrix):
        """JSON strings, one per row of ``matrix`` (n x 4)."""
        proba = self.estimator.predict_proba(matrix)
        labels = proba.argmax(axis=1)
        out = []
        for i, label in enumerate(labels.tolist()):
            out.append(json.dumps({"id": ids[i], "key": keys[i], "label": label,
                                   "species": self.classes[label], "score": round(float(proba[i, label]), 4),
                                   "model_version": self.version}, separators=(",", ":")))
        return out


def load_model(path):
    """Load (once per file version) the model saved at ``path``."""
    if not path:
        raise ModelLoadError("no model file: set the job parameter %s" % PARAMETER)
    path = os.path.abspath(path)
    try:
        st = os.stat(path)
    except OSError as e:
        raise ModelLoadError("cannot load model file %s: %s" % (path, e.strerror or e)) from None
    key = (path, st.st_size, st.st_mtime_ns)
    with _lock:
        model = _cache.get(key)
        if model is not None:
            return model
        import joblib
        try:
            saved = joblib.load(path)
        except Exception as e:
            raise ModelLoadError("cannot load model file %s: not a joblib model file (%s: %s)"
                                 % (path, type(e).__name__, e)) from None
        if not isinstance(saved, dict) or saved.get("format") != FORMAT:
            raise ModelLoadError("cannot load model file %s: it holds %s, not a %s dict (train it with train.py)"
                                 % (path, type(saved).__name__, FORMAT))
        if list(saved.get("features", ())) != FEATURES or not hasattr(saved.get("model"), "predict_proba"):
            raise ModelLoadError("cannot load model file %s: want a classifier of the features %s"
                                 % (path, ", ".join(FEATURES)))
        model = Model(path, saved)
        _cache.clear()  # keep only the newest file's model
        _cache[key] = model
        return model


class _ModelFunction(ScalarFunction):
    def open(self, function_context):
        self.model = load_model(function_context.get_job_parameter(PARAMETER, ""))


class Predict(_ModelFunction):
    """One row: (id, key, four features) -> JSON prediction."""

    def eval(self, id, key, sepal_length, sepal_width, petal_length, petal_width):
        import numpy as np
        row = np.array([[sepal_length, sepal_width, petal_length, petal_width]], dtype=np.float64)
        return self.model.predict([id], [key], row)[0]


class PredictBatch(_ModelFunction):
    """A batch of rows as pandas Series -> a Series of JSON predictions."""

    def eval(self, id, key, sepal_length, sepal_width, petal_length, petal_width):
        import numpy as np
        import pandas as pd
        matrix = np.column_stack([s.to_numpy(dtype=np.float64) for s in
                                  (sepal_length, sepal_width, petal_length, petal_width)])
        return pd.Series(self.model.predict(id.tolist(), key.tolist(), matrix), dtype=object)


class ModelInfo(_ModelFunction):
    """The loaded model: {"version", "kind", "path"} as JSON."""

    def eval(self):
        return json.dumps({"version": self.model.version, "kind": self.model.kind, "path": self.model.path})


_ARGS = [DataTypes.STRING(), DataTypes.STRING()] + [DataTypes.DOUBLE()] * 4

predict = udf(Predict(), input_types=_ARGS, result_type=DataTypes.STRING())
predict_batch = udf(PredictBatch(), input_types=_ARGS, result_type=DataTypes.STRING(), func_type="pandas")
model_info = udf(ModelInfo(), input_types=[], result_type=DataTypes.STRING())
