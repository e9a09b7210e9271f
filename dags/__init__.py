"""The DAGs and their Airflow glue (`dags.common`): the only package that imports Airflow and Cosmos."""
