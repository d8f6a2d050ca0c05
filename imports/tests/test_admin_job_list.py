"""The import jobs pages of the console read in words: statuses by their labels, the columns an
operator scans (the owner only for superusers), and how a job reads its file as sentences and a
table of columns rather than the stored options."""

import re

import pytest

from imports.models import ImportJob
from imports.tests.helpers import run_now
from imports.tests.support import pending_job, stuck
from inboxerr.tests.admin_browser import browser_for

pytestmark = pytest.mark.django_db(transaction=True)

JOBS = "/admin/imports/importjob/"
FRENCH = "Courriel;Prénom;Nom;Notes\r\nann@x.io;Anne;Lévy;a\r\nann@x.io;Anne;Lévy;b\r\nnot-an-email;Zed;Z;c\r\n"


def _columns(html: str) -> list[str]:
    return re.findall(r'<th scope="col"\s+class="[^"]*column-([a-z_]+)', html)


def test_job_list_shows_statuses_in_words(owner, tmp_path):
    partial = run_now(pending_job(owner, tmp_path, "email\na@x.io\nnope\n", name="partial.csv"))
    stuck(pending_job(owner, tmp_path, "email\nb@x.io\n", name="stuck.csv", list_name="Other"))

    html = browser_for(owner).get(JOBS).content.decode()

    assert partial.status == "partially_completed"
    assert '<span class="import-status">Partially completed</span>' in html
    assert '<span class="import-status">Stuck</span>' in html
    assert "partially_completed" not in html.split('id="changelist-filter"')[0]  # the filter links keep the value


def test_job_list_shows_what_an_operator_scans_and_the_owner_only_to_superusers(owner, superuser, tmp_path):
    run_now(pending_job(owner, tmp_path, FRENCH, name="french.csv"))
    scanned = ["date_display", "list_name_display", "file_display", "status_display", "created_display",
               "updated_display", "invalid_display"]

    staff_html = browser_for(owner).get(JOBS).content.decode()
    superuser_html = browser_for(superuser).get(JOBS).content.decode()

    assert _columns(staff_html) == scanned
    assert _columns(superuser_html) == [*scanned[:2], "owner", *scanned[2:]]
    # The progress bar is under the status, the repeated rows in its tooltip, named as on the job's page.
    assert ('<span class="import-progress" title="Rows read: 3; Repeated in the file: 1">'
            '<progress max="100" value="100.0"></progress> 100%</span>') in staff_html


def test_job_page_says_how_the_file_is_read_in_words(owner, tmp_path):
    job = run_now(pending_job(owner, tmp_path, FRENCH.encode("utf-8-sig"), name="french.csv", update_existing=False))

    html = browser_for(owner).get(f"{JOBS}{job.pk}/change/").content.decode()
    shown = re.search(r'<div class="readonly"><table class="key-values">.*?</table>(.*?)</div>', html, re.S)

    facts = dict(re.findall(r"<tr><th scope='row'>(.*?)</th><td>(.*?)</td></tr>", shown.group(0)))
    assert facts == {"Encoding": "UTF-8 with BOM", "Delimiter": "semicolon", "Key field": "email",
                     "Update subscribers already on the list": "no"}
    columns = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td></tr>", shown.group(1))
    assert columns == [("Courriel", "email"), ("Prénom", "standard field: first_name"),
                       ("Nom", "standard field: last_name"), ("Notes", "custom field: notes")]
    for raw in ("header end", "utf-8-sig", "standard:first_name", "Sha256"):
        assert raw not in html
    assert "<label>SHA-256:</label>" in html and f"<code>{job.sha256}</code>" in html


def test_job_page_of_a_json_upload_names_the_rules_without_a_column_table(api, owner):
    api.post("/api/v1/subscribers/background-upload", {"list_name": "Seed", "subscribers": [{"email": "a@x.io"}]},
             format="json")
    job = run_now(ImportJob.objects.get())
    html = browser_for(owner).get(f"{JOBS}{job.pk}/change/").content.decode()

    assert "<th scope='row'>Key field</th><td>email</td>" in html
    assert "Column in the file" not in html and "Encoding" not in html


def test_outsider_cannot_open_the_owners_job_page(owner, outsider, tmp_path):
    job = pending_job(owner, tmp_path)

    response = browser_for(outsider).get(f"{JOBS}{job.pk}/change/")

    assert response.status_code == 302  # the admin sends a missing object back to the list
    assert browser_for(outsider).get(JOBS).content.decode().count("p.csv") == 0
