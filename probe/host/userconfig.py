"""The user's configuration file: TOML defaults for the command-line options.

The file is ``$PROBE_CONFIG`` when set, else ``config.toml`` in probe's config directory
(``$PROBE_CONFIG_DIR``, else ``$XDG_CONFIG_HOME/probe``, i.e. ``~/.config/probe``). Its keys
are option names (``db``, ``vantage``, ``control``, ``resolver``, ``doh``, ``cafile``,
``dns_timeout``, ... with ``-`` or ``_``) and ``lists``; a value is a scalar or, for options that
repeat, a list. Each key applies to every command that has that option. Precedence, highest
first: the command line, the environment (``$PROBE_DB``), this file, the built-in default.

Example::

    db = "/var/lib/probe/probe.db"
    vantage = "office"
    control = ["https://th.example.net/"]
    lists = ["/etc/probe/ru.csv"]
    resolver = ["192.0.2.53"]
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from probe.core.errors import ProbeUsageError
from probe.host.consent import config_dir
from probe.host.files import read_bounded

__all__ = ["CONFIG_FILE_ENV", "ConfigError", "UserConfig", "config_path", "load_config"]

#: Environment variable naming the config file itself.
CONFIG_FILE_ENV = "PROBE_CONFIG"
_MAX_BYTES = 1 << 20  # a config file is a few lines; refuse to read /dev/zero


class ConfigError(ProbeUsageError):
    """The config file cannot be used; the message names the file (and the key)."""


@dataclass(frozen=True)
class UserConfig:
    """A parsed config file: where it was read from and its keys (``-`` written as ``_``)."""

    path: Path
    exists: bool
    values: dict[str, Any]


def config_path() -> Path:
    """Where the config file is (whether or not it exists)."""
    env = os.environ.get(CONFIG_FILE_ENV)
    if env:
        return Path(env).expanduser()
    return config_dir() / "config.toml"


def load_config(path: Path | None = None) -> UserConfig:
    """Read the config file; a missing default file is an empty configuration.

    A file named by ``$PROBE_CONFIG`` (or ``path``) must exist. Raises :class:`ConfigError` for
    an unreadable file, invalid TOML, or a value that is not a string, number, boolean or list.
    """
    explicit = path is not None or bool(os.environ.get(CONFIG_FILE_ENV))
    where = path if path is not None else config_path()

    try:
        is_file, exists = where.is_file(), where.exists()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read: {exc.strerror or exc}") from None
    if not is_file:
        if exists:
            raise ConfigError(f"{where}: not a regular file")
        if explicit:
            raise ConfigError(f"{where}: no such config file")
        return UserConfig(where, False, {})
    raw = read_bounded(where, _MAX_BYTES, what="a config file", error=ConfigError)
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{where}: invalid TOML: {exc}") from None
    values: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            raise ConfigError(f"{where}: {key}: tables are not supported; write keys at the top")
        items = value if isinstance(value, list) else [value]
        for item in items:
            if not isinstance(item, str | int | float | bool):
                raise ConfigError(f"{where}: {key}: expected a string, number or boolean")
        values[key.replace("-", "_")] = value
    return UserConfig(where, True, values)
