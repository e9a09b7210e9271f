"""Speed and batch layers on Spark: the Kafka source, parsing and validation, the transformations shared by
the streaming and batch jobs, and the PostgreSQL sink. Knows nothing about Airflow."""
