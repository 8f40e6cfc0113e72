"""Settings: every ``ELECTRO_*`` variable is read and checked here, in one place."""

from __future__ import annotations

import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from electro.errors import FieldError
from electro.inputs import whole_number

PREFIX = "ELECTRO_"


class SettingsError(ValueError):
    """A configuration value is malformed; the message names the variable."""


@dataclass(frozen=True)
class Settings:
    instance_dir: Path = Path("instance")
    backup_dir: str = ""  # empty: "backups" in the instance folder (see backup_folder)
    database_url: str = ""  # empty: SQLite file in the instance folder
    secret_key: str = ""  # empty: generated once into the instance folder
    # The key before a rotation: two-factor secrets sealed under it still open (README).
    previous_secret_key: str = field(default="", repr=False)
    admin_two_factor: str = "required"  # or "optional" (local demos): see README
    base_url: str = "http://127.0.0.1:5000"
    smtp_host: str = ""  # empty: mail is written as .eml files under the instance folder
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = False
    mail_from: str = "E-lectro <no-reply@electro.example>"
    redis_url: str = ""
    cookie_secure: bool = True
    rate_limits: bool = True
    default_rate_limit: str = "300/minute"
    trusted_proxy_hops: int = 0
    session_ip_policy: str = "log"  # "log" records an event, "strict" ends the session
    session_idle_minutes: int = 120
    session_max_days: int = 7
    admin_session_max_hours: int = 12
    max_sessions_per_user: int = 3
    key_ttl_minutes: int = 15
    key_max_attempts: int = 5
    login_lock_threshold: int = 5  # per (account, client address)
    login_account_lock_threshold: int = 50  # from all addresses together: locks for everyone
    login_lock_window_minutes: int = 15
    login_lock_minutes: int = 15
    password_min_length: int = 12
    password_max_length: int = 128
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    argon2_parallelism: int = 4
    hash_concurrency: int = 2
    event_retention_days: int = 180
    disallowed_words_file: str = ""  # empty: the shipped electro/data/disallowed-words.txt
    search_cache_seconds: float = 2.0  # how stale cached search results and trending may be
    max_content_length: int = 16 * 1024 * 1024  # a backup upload
    max_form_bytes: int = 64 * 1024  # every other request body
    max_form_fields: int = 1000
    body_timeout_seconds: int = 30
    job_interval_seconds: float = 30.0
    # How often the recommendations are rebuilt at most (only when something was bought or
    # viewed since); 0 rebuilds at every background round.
    recommend_rebuild_minutes: float = 60.0
    # Product views are written together, when the oldest waiting is this old (0: at once).
    view_flush_seconds: float = 5.0
    delivery_fee_cents: int = 495  # one flat fee per order...
    free_delivery_from_cents: int = 5000  # ...waived from this value of goods (0: never waived)
    unpaid_order_days: int = 7  # a bank-transfer order unpaid this long is cancelled
    # In the confirmation mail of a bank-transfer order, above the order number (the reference).
    bank_details: str = "E-lectro GmbH, IBAN DE89 3704 0044 0532 0130 00, BIC COBADEFFXXX"
    newsletter_per_minute: int = 600  # newsletter mails sent at most, all nodes together
    api_token_max_days: int = 365  # the longest expiry a personal access token may have
    # Read by `electro create-admin` only (empty: it prompts); kept out of repr and logs.
    admin_password: str = field(default="", repr=False)

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.instance_dir / 'electro.db'}"

    @property
    def mail_dir(self) -> Path:
        return self.instance_dir / "mail"

    @property
    def backup_folder(self) -> Path:
        """Where backup files are: ELECTRO_BACKUP_DIR (storage every node shares), else the
        instance folder's ``backups``."""
        return Path(self.backup_dir) if self.backup_dir else self.instance_dir / "backups"


_BOOL = {"1": True, "true": True, "yes": True, "on": True,
         "0": False, "false": False, "no": False, "off": False}


def _convert(name: str, kind: str, raw: Any) -> Any:
    """``kind`` is the field's annotation, a string (postponed annotations)."""
    if not isinstance(raw, str):
        return raw  # overrides from code are already typed
    env = PREFIX + name.upper()
    if kind == "bool":
        if raw.strip().lower() not in _BOOL:
            raise SettingsError(f"{env} must be one of 1/0, true/false, yes/no; got {raw!r}")
        return _BOOL[raw.strip().lower()]
    if kind == "int":
        try:
            return int(raw)
        except ValueError:
            raise SettingsError(f"{env} must be a whole number; got {raw!r}") from None
    if kind == "float":
        try:
            return float(raw)
        except ValueError:
            raise SettingsError(f"{env} must be a number; got {raw!r}") from None
    if kind == "Path":
        return Path(raw)
    return raw


def load_settings(
    environ: Mapping[str, str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Defaults, then ``ELECTRO_*`` variables, then overrides (tests); checked before use."""
    environ = os.environ if environ is None else environ
    kinds = {f.name: str(f.type) for f in fields(Settings)}
    values: dict[str, Any] = {
        name: _convert(name, kind, environ[PREFIX + name.upper()])
        for name, kind in kinds.items() if PREFIX + name.upper() in environ
    }
    unknown = set(overrides or {}) - set(kinds)
    if unknown:
        raise SettingsError(f"unknown settings: {', '.join(sorted(unknown))}")
    for name, value in (overrides or {}).items():
        values[name] = _convert(name, kinds[name], value)
    settings = Settings(**values)
    _check(settings)
    return settings


def _check(s: Settings) -> None:
    try:
        url = make_url(s.database)
    except ArgumentError:
        raise SettingsError(
            f"ELECTRO_DATABASE_URL is not a database URL: {s.database_url!r} "
            "(expected e.g. sqlite+aiosqlite:///instance/electro.db or "
            "postgresql+asyncpg://user@host/db)"
        ) from None
    if url.drivername not in ("sqlite+aiosqlite", "postgresql+asyncpg"):
        raise SettingsError(
            f"ELECTRO_DATABASE_URL must use sqlite+aiosqlite or postgresql+asyncpg, "
            f"not {url.drivername!r}"
        )
    if not 0 < s.smtp_port < 65536:
        raise SettingsError(f"ELECTRO_SMTP_PORT must be 1-65535; got {s.smtp_port}")
    if not s.base_url.startswith(("http://", "https://")):
        raise SettingsError(
            f"ELECTRO_BASE_URL must start with http:// or https://; got {s.base_url!r}"
        )
    if s.redis_url and not s.redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise SettingsError(f"ELECTRO_REDIS_URL must be a redis:// URL; got {s.redis_url!r}")
    if s.session_ip_policy not in ("log", "strict"):
        raise SettingsError("ELECTRO_SESSION_IP_POLICY must be 'log' or 'strict'")
    if s.admin_two_factor not in ("required", "optional"):
        raise SettingsError("ELECTRO_ADMIN_TWO_FACTOR must be 'required' (admins must use "
                            f"two-factor) or 'optional'; got {s.admin_two_factor!r}")
    if s.trusted_proxy_hops < 0:
        raise SettingsError("ELECTRO_TRUSTED_PROXY_HOPS must be 0 or more")
    if s.password_max_length < 128 or s.password_min_length < 8:
        raise SettingsError("passwords must allow at least 128 characters and need at least 8")
    if s.max_form_bytes < 1024 or s.max_form_fields < 10:
        raise SettingsError("ELECTRO_MAX_FORM_BYTES must be at least 1024 and "
                            "ELECTRO_MAX_FORM_FIELDS at least 10")
    if not 0 < s.login_lock_threshold < s.login_account_lock_threshold:
        raise SettingsError(
            "ELECTRO_LOGIN_ACCOUNT_LOCK_THRESHOLD (failed log-ins from all addresses that lock "
            "an account for everyone) must be greater than ELECTRO_LOGIN_LOCK_THRESHOLD (from "
            f"one address), which must be at least 1; got {s.login_account_lock_threshold} and "
            f"{s.login_lock_threshold}")
    if s.delivery_fee_cents < 0 or s.free_delivery_from_cents < 0:
        raise SettingsError("ELECTRO_DELIVERY_FEE_CENTS and ELECTRO_FREE_DELIVERY_FROM_CENTS "
                            "must be 0 or more (whole cents)")
    if s.unpaid_order_days < 1:
        raise SettingsError("ELECTRO_UNPAID_ORDER_DAYS must be at least 1; got "
                            f"{s.unpaid_order_days}")
    if not s.bank_details.strip():
        raise SettingsError("ELECTRO_BANK_DETAILS must say where to pay (account holder, IBAN)")
    if not 1 <= s.api_token_max_days <= 3650:
        raise SettingsError("ELECTRO_API_TOKEN_MAX_DAYS must be 1-3650 (days a personal access "
                            f"token may live at most); got {s.api_token_max_days}")
    if not 1 <= s.newsletter_per_minute <= 100_000:
        raise SettingsError("ELECTRO_NEWSLETTER_PER_MINUTE must be 1-100000 (newsletter mails "
                            f"sent per minute at most); got {s.newsletter_per_minute}")
    if s.view_flush_seconds < 0:
        raise SettingsError("ELECTRO_VIEW_FLUSH_SECONDS must be 0 or more (seconds product "
                            f"views may wait to be written); got {s.view_flush_seconds}")
    if s.recommend_rebuild_minutes < 0:
        raise SettingsError("ELECTRO_RECOMMEND_REBUILD_MINUTES must be 0 or more (minutes "
                            f"between rebuilds of the recommendations); got "
                            f"{s.recommend_rebuild_minutes}")
    parse_rate(s.default_rate_limit, "ELECTRO_DEFAULT_RATE_LIMIT")


_PERIODS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}


def parse_rate(text: str, what: str = "rate") -> tuple[int, int]:
    """``"10/minute"`` -> (10, 60)."""
    count, _, period = text.partition("/")
    try:
        number = whole_number(count, minimum=1)
    except FieldError:
        number = 0
    if not number or period.strip() not in _PERIODS:
        raise SettingsError(f"{what} must look like '10/minute' (second, minute, hour, day)")
    return number, _PERIODS[period.strip()]


def with_secret_key(settings: Settings) -> Settings:
    """Use ELECTRO_SECRET_KEY, or a key generated once into the instance folder (mode 0600)."""
    if settings.secret_key:
        return settings
    path = settings.instance_dir / "secret_key"
    settings.instance_dir.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Every worker of `electro serve --workers N` gets here at once on the first start: the
        # key is written whole to a file of this process's own, then linked into place, which
        # fails if another process's key got there first; so no worker reads half a key.
        fd, draft = tempfile.mkstemp(dir=settings.instance_dir, prefix=".secret_key-")
        try:
            with os.fdopen(fd, "w") as fh:  # mkstemp makes it 0600
                fh.write(secrets.token_urlsafe(48))
            os.link(draft, path)
        except FileExistsError:
            pass  # the first worker's key is the key
        finally:
            os.unlink(draft)
    return replace(settings, secret_key=path.read_text().strip())
