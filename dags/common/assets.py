"""Airflow Assets shared between DAGs: defined once so producer and consumer DAGs name the same thing.

An Asset is identified by its name and URI; a typo in one DAG would silently schedule on an Asset nobody
produces, so every DAG imports them from here. Only DAG files import this module (it imports Airflow).

- MARTS: the dbt marts, produced by the batch DAG (retail_batch) after `dbt build`; retail_ml runs on it.
- ML_SEGMENTS / ML_RULES: produced by retail_ml when a run is published (the dashboard's ML pages).
"""

from __future__ import annotations

from airflow.sdk import Asset

MARTS = Asset(name="marts", uri="postgres://retail/retail/marts")
ML_SEGMENTS = Asset(name="ml.customer_segments", uri="postgres://retail/retail/ml/customer_segments")
ML_RULES = Asset(name="ml.product_associations", uri="postgres://retail/retail/ml/product_associations")
