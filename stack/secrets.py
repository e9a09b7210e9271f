"""Local passwords, generated on first `retail up` and kept in `<state_dir>/secrets.env` (mode 0600).

Every start also makes the state folder private again (0700: it holds the database files, the lake and
the secrets) and resets secrets.env to 0600, whatever a copy or an editor left. For docker compose,
`retail secrets` additionally writes one file per secret into `<state_dir>/compose-secrets/` (the
files compose's `secrets:` mount into the containers that need them). Values set in the environment
are left alone and not written.
"""

from __future__ import annotations

import os
import pwd
import secrets
from pathlib import Path

from pydantic import SecretStr

from retail.settings import GENERATED_PASSWORD_FIELDS, Settings, env_name, read_secrets_file

# PostgreSQL logins, Airflow's metadata-DB login, its admin (UI) login and its signing key.
GENERATED_SECRETS = GENERATED_PASSWORD_FIELDS
# Compose only: the image's `postgres` superuser, which no container but the database is given.
COMPOSE_SUPERUSER_SECRET = "postgres_superuser_password"
COMPOSE_SECRETS_DIR_NAME = "compose-secrets"


def secure_state_dir(settings: Settings) -> None:
    """State folder 0700 and secrets.env 0600, on every start (not only when they are created).

    As root the embedded PostgreSQL runs as the `pgserver` user, which must reach its data folder
    inside: then the folder is 0710 with that user's group (traverse only, no listing)."""
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    group = _database_group(settings)
    if group is None:
        os.chmod(settings.state_dir, 0o700)
    else:
        os.chown(settings.state_dir, -1, group)
        os.chmod(settings.state_dir, 0o710)
    if settings.secrets_file.exists():
        os.chmod(settings.secrets_file, 0o600)


def _database_group(settings: Settings) -> int | None:
    """The group of the unprivileged user the embedded PostgreSQL runs as under root, if it exists."""
    from stack.postgres import run_as_user

    user = run_as_user() if settings.embedded_postgres else None
    try:
        return pwd.getpwnam(user).pw_gid if user else None
    except KeyError:  # created by the first cluster init, after which `up` secures the folder again
        return None


def ensure_secrets(settings: Settings) -> Settings:
    """Write any missing generated password and return settings that include them."""
    secure_state_dir(settings)
    missing = [name for name in GENERATED_SECRETS if getattr(settings, name) is None]
    if not missing:
        return settings
    path = settings.secrets_file
    stored = read_secrets_file(path)
    generated = {name: secrets.token_urlsafe(24) for name in missing}
    stored.update({env_name(name): value for name, value in generated.items()})
    _write_private(path, "".join(f"{key}={value}\n" for key, value in sorted(stored.items())))
    return settings.model_copy(update={name: SecretStr(value) for name, value in generated.items()})


def write_compose_secrets(settings: Settings) -> Path:
    """One file per secret for compose's `secrets:` (file names = the settings' variables, lower case).

    The files are 0644 inside the 0700 state folder: compose bind-mounts them with their host mode and
    owner, and the containers' unprivileged user (uid 10001) must read its own; on the host only the
    state folder's owner can reach them.
    """
    folder = settings.state_dir / COMPOSE_SECRETS_DIR_NAME
    folder.mkdir(mode=0o700, exist_ok=True)
    values = {env_name(name).lower(): getattr(settings, name) for name in GENERATED_SECRETS}
    superuser = folder / COMPOSE_SUPERUSER_SECRET
    kept = superuser.read_text(encoding="utf-8") if superuser.is_file() else secrets.token_urlsafe(24)
    values[COMPOSE_SUPERUSER_SECRET] = SecretStr(kept)
    for name, value in values.items():
        if value is None:
            raise ValueError(f"no value for secret {name}; run `retail secrets` without setting it empty")
        target = folder / name
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(value.get_secret_value())
        os.chmod(target, 0o644)
    return folder


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)
