"""Invalid configuration stops the process at start with a message naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _start_with(**overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **overrides}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; settings.DATABASES"],
        cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "inboxerr.settings"},
        capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEBUG", "ture"),
        ("Q_WORKERS", "0"),
        ("Q_WORKERS", "many"),
        ("IMPORT_MAX_BYTES", "-5"),
        ("DATABASE_URL", "nosuchdb://x"),
        ("API_TOKEN_TTL_DAYS", "soon"),
    ],
)
def test_invalid_value_fails_at_start_naming_the_variable(name, value):
    result = _start_with(**{name: value})
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert name in result.stderr


def test_defaults_start_with_sqlite_and_the_orm_broker():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DEBUG")}
    result = subprocess.run(
        [sys.executable, "-c",
         "import django; django.setup(); from django.conf import settings as s; "
         "print(s.DATABASES['default']['ENGINE'], s.Q_CLUSTER.get('orm'), s.DEBUG, s.EMAIL_BACKEND)"],
        cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "inboxerr.settings"},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3", "default", "False", "django.core.mail.backends.console.EmailBackend"
    ]


def test_redis_url_switches_broker_and_cache_to_redis():
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL",)}
    result = subprocess.run(
        [sys.executable, "-c",
         "import django; django.setup(); from django.conf import settings as s; "
         "from django_q.brokers import get_broker; from django.core.cache import cache; "
         "cache.set('inboxerr-settings-test', 1); "
         "print(s.Q_CLUSTER.get('redis'), 'orm' in s.Q_CLUSTER, get_broker().ping(), cache.get('inboxerr-settings-test'))"],
        cwd=ROOT, env={**env, "REDIS_URL": "redis://127.0.0.1:6379/14", "DJANGO_SETTINGS_MODULE": "inboxerr.settings"},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["redis://127.0.0.1:6379/14", "False", "True", "1"]


@pytest.mark.parametrize("key", [None, "", "   "])
def test_without_a_secret_key_only_a_debug_server_starts(key):
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    if key is not None:
        env["SECRET_KEY"] = key
    refused = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"], cwd=ROOT,
        env={**env, "DEBUG": "false", "DJANGO_SETTINGS_MODULE": "inboxerr.settings"},
        capture_output=True, text=True, timeout=60,
    )
    assert refused.returncode != 0
    assert "ImproperlyConfigured" in refused.stderr and "SECRET_KEY is not set" in refused.stderr
    development = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; print(len(settings.SECRET_KEY))"],
        cwd=ROOT, env={**env, "DEBUG": "true", "DJANGO_SETTINGS_MODULE": "inboxerr.settings"},
        capture_output=True, text=True, timeout=60,
    )
    assert development.returncode == 0, development.stderr
    assert "using the development key" in development.stderr


def test_the_example_configuration_starts_once_a_key_is_set(tmp_path):
    # .env.example copied as it is (every value empty or a default), as the README suggests: with
    # a key (and nothing else) every command starts.
    example = (ROOT / ".env.example").read_text()
    values = dict(line.split("=", 1) for line in example.splitlines() if line and not line.startswith("#") and "=" in line)
    env = {k: v for k, v in os.environ.items() if k not in values}
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings; print(settings.DEBUG)"],
        cwd=ROOT, env={**env, **values, "SECRET_KEY": "k" * 50, "DJANGO_SETTINGS_MODULE": "inboxerr.settings"},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "False"
