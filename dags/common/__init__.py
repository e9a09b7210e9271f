"""Building blocks the DAG files share: Assets, writer tasks, the Spark submission, the dbt builds."""
