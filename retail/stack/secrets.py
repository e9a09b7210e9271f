"""Local passwords, generated on first `retail up` and kept in `<state_dir>/secrets.env` (mode 0600).

The same file is docker-compose's env file, so both stacks read credentials from one place and none is
ever committed. Values already set in the environment are left alone and not written.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from pydantic import SecretStr

from retail.settings import GENERATED_PASSWORD_FIELDS, Settings, env_name, read_secrets_file

# PostgreSQL logins, Airflow's metadata-DB login, its admin (UI) login and its signing key.
GENERATED_SECRETS = GENERATED_PASSWORD_FIELDS


def ensure_secrets(settings: Settings) -> Settings:
    """Write any missing generated password and return settings that include them."""
    missing = [name for name in GENERATED_SECRETS if getattr(settings, name) is None]
    if not missing:
        return settings
    path = settings.secrets_file
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = read_secrets_file(path)
    generated = {name: secrets.token_urlsafe(24) for name in missing}
    stored.update({env_name(name): value for name, value in generated.items()})
    _write_private(path, "".join(f"{key}={value}\n" for key, value in sorted(stored.items())))
    return settings.model_copy(update={name: SecretStr(value) for name, value in generated.items()})


def _write_private(path: Path, text: str) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
