"""ML jobs over the dbt marts: RFM + K-Means customer segmentation and market-basket association rules.

Reads `marts.*` only, writes the `ml` schema; every run is recorded in `ml.model_runs` and becomes visible
atomically. Entry points: `ml.jobs.run_all(settings)`, the `retail_ml` DAG, and `ml.cli` (`retail ml run`).
"""
