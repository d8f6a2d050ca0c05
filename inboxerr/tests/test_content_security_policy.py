"""Content-Security-Policy: every page's scripts and styles come from this site as files, so the
policy can say 'self' and nothing else; the API docs load nothing from a CDN."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Templates that are email bodies, not pages: mail clients need their inline styles.
EMAIL_TEMPLATES = {"campaigns/reminder.html"}


def _policy(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    return {name: values for name, *values in (part.split() for part in header.split(";") if part.strip())}


def test_the_console_answers_with_a_self_only_policy(client, superuser):
    client.force_login(superuser)
    for url in ("/admin/login/", "/admin/", "/admin/subscribers/subscriberlist/", "/admin/campaigns/campaign/add/"):
        response = client.get(url, follow=True)
        assert response.status_code == 200, url
        policy = _policy(response)
        assert policy["script-src"] == ["'self'"], url
        assert policy["style-src"] == ["'self'"], url
        assert policy["default-src"] == ["'self'"] and policy["frame-ancestors"] == ["'none'"], url


@pytest.mark.django_db
def test_the_api_docs_run_no_inline_script_and_load_nothing_from_elsewhere(client):
    response = client.get("/docs")
    assert response.status_code == 200 and _policy(response)["script-src"] == ["'self'"]
    page = response.content.decode()
    scripts = re.findall(r"<script([^>]*)>", page)
    assert scripts and all("src=" in attributes for attributes in scripts)
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert all(source.startswith("/") for source in sources), sources
    # The start-up script is a file of its own, served by the same view.
    start = next(source for source in sources if "script" in source and "sidecar" not in source)
    script = client.get(start)
    assert script.status_code == 200 and b"SwaggerUIBundle" in script.content
    # The rest are this site's static files (drf-spectacular-sidecar's copy of Swagger UI).
    from django.contrib.staticfiles import finders

    assets = [source for source in sources if source.startswith("/static/")]
    assert any(asset.endswith("swagger-ui-bundle.js") for asset in assets)
    assert all(finders.find(asset.removeprefix("/static/")) for asset in assets), assets


def test_no_page_template_holds_inline_script_or_style():
    offenders = []
    for template in sorted((ROOT / "templates").rglob("*.html")):
        name = template.relative_to(ROOT / "templates").as_posix()
        if name in EMAIL_TEMPLATES:
            continue
        text = template.read_text()
        for pattern in (r"<script(?![^>]*\bsrc=)[^>]*>", r"<style\b", r"\sstyle=", r"\son[a-z]+="):
            offenders += [f"{name}: {match}" for match in re.findall(pattern, text)]
    assert offenders == []


def test_no_html_written_in_python_holds_an_inline_handler_or_style():
    offenders = []
    for source in sorted(ROOT.glob("*/**/*.py")):
        if ".venv" in source.parts or "tests" in source.parts or "bench" in source.parts:
            continue
        text = source.read_text()
        offenders += [f"{source.relative_to(ROOT)}: {match}" for match in re.findall(r"<[a-z][^<>]*\s(?:on[a-z]+|style)=", text)]
    assert offenders == []


def test_the_dry_run_lets_the_email_preview_show_its_styles_and_images(client, owner):
    from campaigns import services
    from inboxerr.actors import Actor
    from subscribers import services as subscribers

    actor = Actor(user=owner, source="admin")
    subscribers.subscriber_create(actor=actor, owner=owner, list_name="Preview", record={"email": "a@example.com"})
    template = services.template_create(actor=actor, owner=owner, name="T", channel="email", subject="Hi",
                                        body_text="Hi", body_html='<p style="color:red">Hi</p>', is_active=True)
    campaign = services.campaign_create(actor=actor, owner=owner, name="C", channel="email", template_id=template.pk,
                                        list_names=["Preview"])
    client.force_login(owner)
    response = client.get(f"/admin/campaigns/campaign/{campaign.pk}/dry-run/")
    assert response.status_code == 200 and b"<iframe sandbox" in response.content
    policy = _policy(response)
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"] and "https:" in policy["img-src"]
    assert policy["script-src"] == ["'self'"]


def test_the_browsable_api_keeps_its_scripts_to_files(client, owner):
    client.force_login(owner)
    response = client.get("/api/v1/subscribers/lists", HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and b"logoutForm" in response.content
    policy = _policy(response)
    # DRF's own inline styles (button layout, code colours) may apply; no inline script runs.
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert b"onclick" not in response.content
