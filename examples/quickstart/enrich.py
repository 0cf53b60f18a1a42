"""Enrichment UDF for the quickstart: PyFlink code, unchanged.

``open`` runs once, before the first event: it "loads a model" (here a
keyword table and a scoring threshold from the job parameters) and registers
metrics. ``eval`` runs once per event, synchronously, inside the Go process.
"""

import logging
import re
from urllib.parse import urlparse

from pyflink.table import DataTypes, Row
from pyflink.table.udf import ScalarFunction, udf

log = logging.getLogger("quickstart.enrich")


class Enrich(ScalarFunction):
    def open(self, function_context):
        self.categories = {
            "shoes": "fashion", "shirt": "fashion", "laptop": "electronics",
            "phone": "electronics", "pasta": "groceries", "coffee": "groceries",
        }
        self.word = re.compile(r"[a-z]+")
        self.big_spender = float(function_context.get_job_parameter("big_spender", "100"))
        group = function_context.get_metric_group().add_group("udf", "enrich")
        self.enriched = group.counter("events_enriched")
        self.amounts = group.distribution("amount_cents")
        log.info("enrich model loaded: %d keywords, big spender above %.0f",
                 len(self.categories), self.big_spender)

    def eval(self, user_id, url, amount):
        self.enriched.inc()
        self.amounts.update(int(amount * 100))
        path = urlparse(url).path.lower()
        category = next((self.categories[w] for w in self.word.findall(path)
                         if w in self.categories), "other")
        tier = "gold" if amount >= self.big_spender else "standard"
        return Row(category=category, tier=tier, user=user_id.upper())


enrich = udf(Enrich(),
             input_types=[DataTypes.STRING(), DataTypes.STRING(), DataTypes.DOUBLE()],
             result_type=DataTypes.ROW([DataTypes.FIELD("category", DataTypes.STRING()),
                                        DataTypes.FIELD("tier", DataTypes.STRING()),
                                        DataTypes.FIELD("user", DataTypes.STRING())]))
