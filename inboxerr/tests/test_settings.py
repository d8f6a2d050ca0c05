"""Invalid configuration stops the process at start with a message naming the variable."""

import os
import shutil
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
        ("API_THROTTLE_USER", "lots"),
        ("API_THROTTLE_ANON", "10/fortnight"),
        ("METRICS_ALLOWED_IPS", "127.0.0.1,localhost"),
        ("SECURE_PROXY_SSL_HEADER", "X-Forwarded Proto"),
        ("SECURE_HSTS_SECONDS", "-1"),
        ("NUM_PROXIES", "-1"),
        ("SITE_URL", "inboxerr.example.com"),
        ("AXES_FAILURE_LIMIT", "0"),
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


# A key strong enough for a server with DEBUG off (Django's W009 rule), for tests only.
STRONG_KEY = "settings-test-key-4f9c2b7e1d8a6f3c0b5e9d2a7c4f1e8b-not-for-production"
# What a fresh machine has in its environment before anything of Inboxerr's is set.
BARE_ENV = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}


@pytest.fixture
def project(tmp_path) -> Path:
    """A copy of the project that reads its own .env: the settings package and manage.py copied
    (settings find .env beside them), everything else linked. The real checkout's .env, if a
    developer has one, stays out of it."""
    copy = tmp_path / "project"
    copy.mkdir()
    for entry in ROOT.iterdir():
        if entry.name in (".env", ".venv", ".git", "var") or entry.name.endswith((".sqlite3", ".sqlite3-wal", ".sqlite3-shm")):
            continue
        if entry.name in ("inboxerr", "manage.py"):
            copier = shutil.copytree if entry.is_dir() else shutil.copy2
            copier(entry, copy / entry.name, **({"ignore": shutil.ignore_patterns("__pycache__")} if entry.is_dir() else {}))
        else:
            (copy / entry.name).symlink_to(entry)
    return copy


def _manage(project: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=project, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize(
    "key",
    [
        "inboxerr-test-key",  # short
        "ab" * 40,  # long, but 2 different characters
        "django-insecure-" + "x7Qp2Lm9Vz4Rt8Ks1Wn6Yb3Hc5Jd0Fg" * 2,  # a generated development key
        "inboxerr-dev-only-insecure-key-do-not-use-in-production",  # the key written in settings.py
    ],
)
def test_a_weak_or_published_key_refuses_a_server_with_debug_off(key):
    env = {**os.environ, "SECRET_KEY": key, "DJANGO_SETTINGS_MODULE": "inboxerr.settings"}
    refused = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT,
                             env={**env, "DEBUG": "false"}, capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0
    last_line = refused.stderr.strip().splitlines()[-1]
    assert last_line.startswith("django.core.exceptions.ImproperlyConfigured: SECRET_KEY is ")
    development = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT,
                                 env={**env, "DEBUG": "true"}, capture_output=True, text=True, timeout=60)
    assert development.returncode == 0, development.stderr[-2000:]


def test_a_strong_key_starts_a_server_with_debug_off():
    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); from django.conf import settings as s; print(s.DEBUG, s.SECRET_KEY == %r)" % STRONG_KEY],
        cwd=ROOT, env={**os.environ, "SECRET_KEY": STRONG_KEY, "DEBUG": "false", "DJANGO_SETTINGS_MODULE": "inboxerr.settings"},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["False", "True"]


def test_empty_values_mean_the_default_for_every_variable():
    empty = ["IMPORT_DIR", "Q_WORKERS", "ALLOWED_HOSTS", "API_THROTTLE_USER", "METRICS_ALLOWED_IPS", "NUM_PROXIES",
             "SECURE_HSTS_SECONDS", "AXES_FAILURE_LIMIT", "SITE_URL", "EMAIL_URL", "DATABASE_CONN_MAX_AGE"]
    result = subprocess.run(
        [sys.executable, "-c",
         "import django; django.setup(); from django.conf import settings as s; "
         "print(s.IMPORT_DIR == s.BASE_DIR / 'var' / 'imports', s.Q_CLUSTER['workers'], s.ALLOWED_HOSTS, "
         "s.API_THROTTLE_USER, s.METRICS_ALLOWED_IPS, s.NUM_PROXIES, s.SECURE_HSTS_SECONDS, s.AXES_FAILURE_LIMIT, "
         "s.SITE_URL, s.EMAIL_BACKEND, sep='|')"],
        cwd=ROOT, env={**os.environ, **{name: "" for name in empty}, "DJANGO_SETTINGS_MODULE": "inboxerr.settings"},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().split("|") == [
        "True", "2", "['localhost', '127.0.0.1', '[::1]']", "6000/min", "['127.0.0.1', '::1']", "0", "0", "10",
        "http://127.0.0.1:8000", "django.core.mail.backends.console.EmailBackend",
    ]


def test_the_example_configuration_as_dot_env_runs_make_run_and_refuses_a_keyless_server(project):
    # .env.example copied to .env and nothing else set, as on a fresh machine.
    (project / ".env").write_text((ROOT / ".env.example").read_text())
    # `make run` (scripts/run.sh) exports DEBUG=true unless the environment says otherwise.
    assert 'export DEBUG="${DEBUG:-true}"' in (ROOT / "scripts" / "run.sh").read_text()
    development = _manage(project, {**BARE_ENV, "DEBUG": "true"}, "check")
    assert development.returncode == 0, development.stderr[-2000:]
    assert "System check identified no issues" in development.stdout
    # The same .env as a server (DEBUG=false, as the example says) refuses to start without a key...
    server = _manage(project, BARE_ENV, "check")
    assert server.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY is not set" in server.stderr
    # ... and starts once the key is filled in there.
    (project / ".env").write_text((ROOT / ".env.example").read_text().replace("\nSECRET_KEY=\n", f"\nSECRET_KEY={STRONG_KEY}\n"))
    keyed = _manage(project, BARE_ENV, "check")
    assert keyed.returncode == 0, keyed.stderr[-2000:]


def test_an_https_site_passes_the_deploy_check(project):
    production = {**BARE_ENV, "DEBUG": "false", "SECRET_KEY": STRONG_KEY, "ALLOWED_HOSTS": "inboxerr.example.com",
                  "SITE_URL": "https://inboxerr.example.com"}
    result = _manage(project, production, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "System check identified no issues" in result.stdout


def test_an_http_site_or_an_override_is_named_by_the_deploy_check(project):
    base = {**BARE_ENV, "DEBUG": "false", "SECRET_KEY": STRONG_KEY, "ALLOWED_HOSTS": "inboxerr.example.com"}
    plain = _manage(project, {**base, "SITE_URL": "http://inboxerr.example.com"}, "check", "--deploy",
                    "--fail-level", "WARNING")
    assert plain.returncode != 0
    for check in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert check in plain.stderr
    no_redirect = _manage(project, {**base, "SITE_URL": "https://inboxerr.example.com", "SECURE_SSL_REDIRECT": "false"},
                          "check", "--deploy", "--fail-level", "WARNING")
    assert no_redirect.returncode != 0
    assert "security.W008" in no_redirect.stderr and "security.W004" not in no_redirect.stderr


def _settings_of(*names: str, **env: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c",
         "import sys, django; django.setup(); from django.conf import settings as s; "
         "print(*(repr(getattr(s, n)) for n in sys.argv[1:]), sep='|')", *names],
        cwd=ROOT, env={**os.environ, **env, "DJANGO_SETTINGS_MODULE": "inboxerr.settings"},
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().split("|")


def test_https_settings_follow_the_site_url_unless_set():
    names = ("SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE", "SECURE_SSL_REDIRECT", "SECURE_HSTS_SECONDS",
             "SECURE_HSTS_INCLUDE_SUBDOMAINS", "SECURE_HSTS_PRELOAD", "SECURE_PROXY_SSL_HEADER")
    assert _settings_of(*names, SITE_URL="http://127.0.0.1:8000") == [
        "False", "False", "False", "0", "False", "False", "None"]
    assert _settings_of(*names, SITE_URL="https://inboxerr.example.com") == [
        "True", "True", "True", "31536000", "True", "False", "None"]
    assert _settings_of(*names, SITE_URL="https://inboxerr.example.com", SESSION_COOKIE_SECURE="false",
                        SECURE_HSTS_SECONDS="3600", SECURE_HSTS_INCLUDE_SUBDOMAINS="false", SECURE_HSTS_PRELOAD="true",
                        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO") == [
        "False", "True", "True", "3600", "False", "True", "('HTTP_X_FORWARDED_PROTO', 'https')"]
    assert _settings_of("SECURE_PROXY_SSL_HEADER", SECURE_PROXY_SSL_HEADER="X-Forwarded-Ssl,on") == [
        "('HTTP_X_FORWARDED_SSL', 'on')"]


def test_metrics_trust_loopback_only_without_a_proxy():
    assert _settings_of("METRICS_ALLOWED_IPS") == ["['127.0.0.1', '::1']"]
    assert _settings_of("METRICS_ALLOWED_IPS", SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO") == ["[]"]
    assert _settings_of("METRICS_ALLOWED_IPS", NUM_PROXIES="1") == ["[]"]
    assert _settings_of("METRICS_ALLOWED_IPS", NUM_PROXIES="1", METRICS_ALLOWED_IPS="10.0.0.0/8") == ["['10.0.0.0/8']"]


def test_every_variable_the_settings_read_is_in_the_example_configuration():
    import re

    read = set(re.findall(r'(?:env\.\w+|_env\w*)\(\s*"([A-Z][A-Z0-9_]+)"', (ROOT / "inboxerr" / "settings.py").read_text()))
    example = (ROOT / ".env.example").read_text()
    assert {"SECURE_PROXY_SSL_HEADER", "API_THROTTLE_ANON", "AXES_FAILURE_LIMIT"} <= read
    assert sorted(name for name in read if not re.search(rf"^(# )?{name}=", example, re.M)) == []
