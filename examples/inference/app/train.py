"""Train the near-line inference example's model and save it with joblib.

The model is a scikit-learn classifier of iris species, trained on the iris
data set that scikit-learn ships (``sklearn.datasets.load_iris``: nothing is
downloaded). What is saved is a dict::

    {"format": "pyudf-inference-model/1", "version": "v1",
     "features": ["sepal_length", ...], "classes": ["setosa", ...],
     "kind": "logistic", "model": <fitted estimator>}

so the version travels with the model: every prediction names the version
that made it.

The Go program runs :func:`train_model` through a pyudf engine, so it uses the
packages the engine installed from ``requirements.txt``; with scikit-learn and
joblib installed, ``python train.py OUT.joblib VERSION [logistic|forest]``
does the same from a shell.
"""

import os
import sys
import tempfile

from pyflink.table import DataTypes
from pyflink.table.udf import udf

FORMAT = "pyudf-inference-model/1"
FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
KINDS = ("logistic", "forest")


def train(path, version, kind="logistic"):
    """Fit a classifier of ``kind`` on iris and save it to ``path`` (written
    to a temporary file first, then renamed, so a reader never sees half a
    model). Returns a one-line summary."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if not version:
        raise ValueError("a model needs a version")
    iris = load_iris()
    if kind == "logistic":
        model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    elif kind == "forest":
        model = RandomForestClassifier(n_estimators=25, max_depth=3, random_state=7)
    else:
        raise ValueError("kind must be one of %s, not %r" % (", ".join(KINDS), kind))
    model.fit(iris.data, iris.target)
    accuracy = model.score(iris.data, iris.target)
    saved = {"format": FORMAT, "version": version, "features": list(FEATURES),
             "classes": [str(c) for c in iris.target_names], "kind": kind, "model": model}
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".model-", suffix=".tmp")
    os.close(fd)
    try:
        joblib.dump(saved, tmp)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return "%s %s: %s, training accuracy %.3f" % (path, version, kind, accuracy)


@udf(input_types=[DataTypes.STRING(), DataTypes.STRING(), DataTypes.STRING()], result_type=DataTypes.STRING())
def train_model(path, version, kind):
    """:func:`train` as a UDF, for the Go side."""
    return train(path, version, kind)


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit("usage: python train.py OUT.joblib VERSION [logistic|forest]")
    print(train(*sys.argv[1:]))
