"""Real-browser tests of the admin console: a real web server and a real qcluster on the test
database, Debian's Chromium driven by Playwright, forms posted with CSRF as a person's browser
posts them.

Use it from a test module:

    pytestmark = BROWSER_TEST

    def test_something(admin_page, live_stack):
        admin_page.goto(live_stack.url("/admin/"))

The stack is started for each test (about 3 s): its processes cache what the database held when
they started (content type ids, for one), and every test starts from the migrated database anew.
"""

import fcntl
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from inboxerr.tests.processes import ROOT, current_database_url, kill_group

# Playwright's sync API runs an event loop in this thread; Django refuses ORM calls from a thread
# with a running loop unless told that this test process knows what it is doing.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")

# The marks of a browser test module. Its data must be committed for the server and the worker to
# see it (transaction=True), and each test must start from the migrated database as it was, rows
# of data migrations included (serialized_rollback=True): a plain flush would give content types
# new ids, which the server process has cached, and drop the worker's schedules.
BROWSER_TEST = [pytest.mark.browser, pytest.mark.django_db(transaction=True, serialized_rollback=True)]
VIEWPORT = {"width": 1366, "height": 768}
# Without the networking flags Chromium keeps trying to reach Google's hosts, which this closed
# network refuses many times a second.
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
]
SCREENSHOT_DIR = Path(os.environ.get("SCREENSHOT_DIR", ROOT / "var" / "screenshots"))
PASSWORD = "browser-password-123"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveStack:
    base: str
    server: subprocess.Popen
    worker: subprocess.Popen
    log_dir: Path

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-4000:]}" for p in sorted(self.log_dir.glob("*.log")))


def _wait_until_serving(base: str, server: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("the web server exited during start-up (its log is in the live-stack folder)")
        try:
            with urllib.request.urlopen(f"{base}/admin/login/", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise RuntimeError("the web server did not answer within a minute")


@pytest.fixture(scope="session")
def collected_static() -> None:
    """Static files collected once, as a deployment does; whitenoise serves them with DEBUG off.
    Test processes running side by side take turns: two copies into one folder can collide."""
    (ROOT / "var").mkdir(exist_ok=True)
    with open(ROOT / "var" / ".collectstatic.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"], cwd=ROOT,
                       check=True)


@pytest.fixture
def live_stack(request, transactional_db, django_db_blocker, collected_static, tmp_path_factory) -> Iterator[LiveStack]:
    """`runserver` (ASGI: HTTP and WebSockets) and `qcluster` as separate processes on the test
    database, with DEBUG off, so the pages are the ones an operator gets. A module may set
    `LIVE_STACK_ENV = {...}` to give both processes more environment (EMAIL_URL, DISPATCH_*)."""
    log_dir = tmp_path_factory.mktemp("live-stack")
    with django_db_blocker.unblock():
        database_url = current_database_url()
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        "PYTHONUNBUFFERED": "1",
        "IMPORT_DIR": str(log_dir / "imports"),
        "EMAIL_URL": os.environ.get("BROWSER_EMAIL_URL", "memorymail://"),
    }
    env.update(getattr(request.module, "LIVE_STACK_ENV", {}))
    env.pop("REDIS_URL", None)
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"

    def spawn(name: str, *args: str) -> subprocess.Popen:
        log = open(log_dir / f"{name}.log", "wb")
        return subprocess.Popen([sys.executable, "manage.py", *args], cwd=ROOT, env=env, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    server = spawn("server", "runserver", f"127.0.0.1:{port}", "--noreload")
    worker = spawn("worker", "qcluster")
    stack = LiveStack(base, server, worker, log_dir)
    try:
        _wait_until_serving(base, server)
        yield stack
    finally:
        for proc in (server, worker):
            kill_group(proc)


# Per module, like the stack: Playwright's sync API keeps an event loop running in this thread
# while it is open, and tests elsewhere that call async_to_sync (WebSocket clients) cannot run then.
@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not at {CHROMIUM}: `make test` installs Debian's chromium package; "
                    "set CHROMIUM_PATH if it lives elsewhere.")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def log_in(page, stack: LiveStack, username: str, password: str = PASSWORD) -> None:
    """Through the login form, so the session and CSRF cookies are the browser's own."""
    page.goto(stack.url("/admin/login/"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lambda url: "/admin/login/" not in url)


@pytest.fixture
def page_as(browser, live_stack, request):
    """page_as(user) -> a Playwright page at 1366x768, logged in as that user (whose password
    must have been set by set_browser_password). Pages are closed after the test; on failure the last screen is kept under
    var/screenshots/failed/ and the server's log is printed."""
    contexts = []
    # Chromium reports what the Content-Security-Policy blocked (a script, a style, a WebSocket) on
    # the console: any of it on any page is a console feature broken for real users.
    violations: list[str] = []

    def open_page(user):
        context = browser.new_context(viewport=VIEWPORT)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on("console", lambda message: violations.append(f"{page.url}: {message.text}")
                if "Content Security Policy" in message.text else None)
        log_in(page, live_stack, user.get_username())
        return page

    yield open_page
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for context in contexts:
        if failed:
            for index, page in enumerate(context.pages):
                folder = ROOT / "var" / "screenshots" / "failed"
                folder.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=folder / f"{request.node.name}-{index}.png", full_page=True)
        context.close()
    if failed:
        print(live_stack.logs())
    assert failed or violations == [], "\n".join(violations)


def set_browser_password(user) -> None:
    """Give `user` PASSWORD in a hash the server can check: the tests' own fast MD5 hasher is not
    among the server's hashers. Few PBKDF2 rounds; the server upgrades the hash at first login."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    user.password = PBKDF2PasswordHasher().encode(PASSWORD, "browsertests", iterations=1000)
    user.save(update_fields=["password"])


@pytest.fixture
def staff_user(transactional_db):
    from inboxerr.tests.factories import UserFactory

    user = UserFactory(username="staff", is_superuser=True, is_staff=True)
    set_browser_password(user)
    return user


@pytest.fixture
def admin_page(page_as, staff_user):
    return page_as(staff_user)


def screenshot(page, name: str) -> Path:
    """The visible window at 1366x768, as docs/screenshots keeps them (SCREENSHOT_DIR=docs/screenshots
    to refresh those; by default they go to var/screenshots)."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOT_DIR / f"{name}.png"
    page.screenshot(path=path)
    return path


def wait_for_js(page, expression: str, timeout: float = 30_000) -> None:
    """page.wait_for_function, minus its in-page eval, which the Content-Security-Policy rightly
    refuses (no 'unsafe-eval'): the expression is evaluated from the test until it holds. `timeout`
    in milliseconds, as Playwright's."""
    deadline = time.monotonic() + timeout / 1000
    while not page.evaluate(expression):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout / 1000:.0f} s waiting for {expression} on {page.url}")
        page.wait_for_timeout(100)


def assert_not_clipped(page) -> None:
    """Nothing on the page is wider than the 1366 px window (tables scroll inside their box)."""
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page.url} is {overflow} px wider than the window"
