"""The example's UDF package, shipped to the engine as a .zip python file.

It needs a third-party package (``tinytok``, installed from the requirements'
cache directory) and a data file (``lexicon/weights.tsv``, from an archive).
"""

import os

import tinytok
from pyflink.table import DataTypes
from pyflink.table.udf import ScalarFunction, udf


class Sentiment(ScalarFunction):
    """The sum of the lexicon's weights of a text's words."""

    def open(self, function_context):
        # The archive's directory: a relative "lexicon/weights.tsv" would work
        # in process mode only (the workers' working directory); this works in both.
        path = os.path.join(function_context.get_archive_dir("lexicon"), "weights.tsv")
        self.weights = {}
        with open(path) as f:
            for line in f:
                word, weight = line.split("\t")
                self.weights[word] = float(weight)

    def eval(self, text):
        return sum(self.weights.get(word, 0.0) for word in tinytok.words(text))


sentiment = udf(Sentiment(), input_types=[DataTypes.STRING()], result_type=DataTypes.DOUBLE())


@udf(input_types=[], result_type=DataTypes.STRING())
def tokenizer_version():
    return "tinytok %s from %s" % (tinytok.__version__, os.path.dirname(os.path.dirname(tinytok.__file__)))
