"""The admin's import wizard with CSRF enforced as a browser meets it: choose or create a list,
upload, check the preview and mapping, choose options, start; and every bad file refused on the
form with nothing stored."""

import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from imports.models import ImportJob, ImportStatus
from imports.tests.helpers import import_file, run_now, write
from imports.tests.support import stored_files
from inboxerr.tests.admin_browser import browser_for, page_csrf_token
from subscribers.models import Subscriber, SubscriberList
from subscribers.tests.factories import SubscriberListFactory

pytestmark = pytest.mark.django_db(transaction=True)

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
CHOOSE = "/admin/imports/importjob/import/"
UPLOAD = "/admin/imports/importjob/upload/"


@pytest.fixture
def owner_client(owner) -> Client:
    return browser_for(owner)


@pytest.fixture
def news(owner) -> SubscriberList:
    return SubscriberListFactory(owner=owner, name="News")


def _upload(client: Client, subscriber_list, content: bytes, name: str = "people.csv", *, with_token: bool = True):
    url = f"{UPLOAD}?list={subscriber_list.pk}"
    data = {"csrfmiddlewaretoken": page_csrf_token(client, CHOOSE)} if with_token else {}
    data["file"] = SimpleUploadedFile(name, content, "text/csv")
    return client.post(url, data)


def _post(client: Client, url: str, data: dict):
    return client.post(url, {"csrfmiddlewaretoken": page_csrf_token(client, url), **data})


def _form_error(response) -> str:
    assert response.status_code == 200, response.status_code
    html = response.content.decode()
    return " ".join(re.findall(r'<ul class="errorlist[^"]*"[^>]*><li>(.*?)</li>', html))


# --- CSRF and the upload handler ----------------------------------------------------------------

def test_upload_with_csrf_enforced_goes_to_the_preview(owner_client, news):
    response = _upload(owner_client, news, "E-mail;Vorname;Tier\r\na@x.io;Änne;gold\r\n".encode("utf-8-sig"))
    assert response.status_code == 302
    assert re.fullmatch(r"/admin/imports/importjob/upload/[0-9a-f]{32}/", response["Location"])
    assert len(stored_files()) == 1 and not ImportJob.objects.exists()


def test_upload_without_the_csrf_token_is_refused_with_403_and_nothing_stored(owner_client, news):
    response = _upload(owner_client, news, b"email\na@x.io\n", with_token=False)
    assert response.status_code == 403
    assert stored_files() == []


def test_upload_over_the_size_limit_is_refused_on_the_form(owner_client, news, settings):
    settings.IMPORT_MAX_BYTES = 200 * 1024
    response = _upload(owner_client, news, b"email\n" + b"someone@example.com\n" * 20_000)
    assert "larger than the upload limit of 200.0\xa0KB" in _form_error(response)
    assert stored_files() == [] and not ImportJob.objects.exists()


def test_upload_cut_off_while_streaming_is_refused_on_the_form(owner_client, news, settings):
    # Declared length within the handler's allowance for form overhead, so the file starts
    # streaming and is stopped at the limit itself.
    settings.IMPORT_MAX_BYTES = 200 * 1024
    response = _upload(owner_client, news, b"email\n" + b"x@example.com\n" * 15_000)
    assert "larger than the upload limit" in _form_error(response)
    assert stored_files() == [] and not ImportJob.objects.exists()


def test_upload_page_shows_the_size_limit(owner_client, news, settings):
    settings.IMPORT_MAX_BYTES = 5 * 1024 * 1024
    html = owner_client.get(f"{UPLOAD}?list={news.pk}").content.decode()
    assert "Up to 5.0\xa0MB" in html
    assert '<label for="id_file"' in html and 'aria-describedby="id_file_helptext"' in html


# --- bad files ----------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (PNG, "photo.png", "This is not a text file; upload a CSV file"),
        (b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00", "people.xlsx",
         "this is an Excel workbook: save it as CSV first"),
        (b"", "people.csv", "The file is empty"),
        (b"email,name\r\n", "people.csv", "The file has a header but no data rows"),
        (b'[{"email": "a@x.io"}]', "people.csv", "This file is JSON, not CSV"),
        (b"email,fi\x00rst\n" + b"".join(b"p%d@x.io,P\n" % i for i in range(20)), "people.csv",
         "The header row has a NUL character in column 2"),
    ],
    ids=["png", "xlsx", "empty", "header-only", "json", "nul-in-header"],
)
def test_bad_file_is_refused_on_the_form_with_nothing_stored(owner_client, news, content, name, message):
    response = _upload(owner_client, news, content, name)
    assert message in _form_error(response)
    assert stored_files() == [] and not ImportJob.objects.exists()


def test_a_file_part_without_a_filename_is_refused_on_the_form(owner_client, news):
    # What a browser sends when no file was chosen; Django's parser drops such a part.
    token, boundary = page_csrf_token(owner_client, CHOOSE), "wizard-boundary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrfmiddlewaretoken"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename=""\r\n'
        f"Content-Type: text/csv\r\n\r\nemail\na@x.io\n\r\n--{boundary}--\r\n"
    )
    response = owner_client.post(f"{UPLOAD}?list={news.pk}", body,
                                 content_type=f"multipart/form-data; boundary={boundary}")
    assert "Choose a CSV file to upload." in _form_error(response)
    assert stored_files() == []


def test_outsider_cannot_upload_into_the_owners_list(outsider, news):
    response = _upload(browser_for(outsider), news, b"email\na@x.io\n")
    assert response.status_code == 404
    assert stored_files() == []


def test_upload_without_the_import_permission_is_refused(no_perms_user, news):
    client = browser_for(no_perms_user)
    assert client.get(f"{UPLOAD}?list={news.pk}").status_code == 403
    assert client.get(CHOOSE).status_code == 403


# --- step 1: the list ---------------------------------------------------------------------------

def test_import_jobs_page_and_a_lists_page_lead_into_the_wizard(owner_client, news):
    jobs_page = owner_client.get("/admin/imports/importjob/").content.decode()
    assert f'<a href="{CHOOSE}" class="addlink">Import a CSV</a>' in jobs_page
    list_page = owner_client.get(f"/admin/subscribers/subscriberlist/{news.pk}/change/").content.decode()
    assert f'<a href="{UPLOAD}?list={news.pk}">Import a CSV</a>' in list_page


def test_choosing_an_existing_list_leads_to_its_upload_page(owner_client, news):
    SubscriberListFactory(name="Someone else's")
    page = owner_client.get(CHOOSE).content.decode()
    assert "News (key: email" in page and "Someone else" not in page
    response = _post(owner_client, CHOOSE, {"list": news.pk, "choose": "1"})
    assert response.status_code == 302 and response["Location"] == f"{UPLOAD}?list={news.pk}"


def _preselected_list(client: Client) -> str:
    html = client.get(CHOOSE).content.decode()
    return re.search(r'<select name="list"[^>]*>.*?<option value="(\d+)" selected>', html, re.S).group(1)


def test_step_one_preselects_the_list_of_the_users_newest_import(owner_client, owner, outsider, tmp_path):
    lists = {name: SubscriberListFactory(owner=owner, name=name) for name in ("Alpha", "Middle", "Zulu")}
    assert _preselected_list(owner_client) == str(lists["Zulu"].pk)  # no import yet: the newest list
    import_file(owner, write(tmp_path, "email\na@x.io\n"), list_name="Middle")
    import_file(outsider, write(tmp_path, "email\nb@x.io\n", "other.csv"), list_name="Theirs")

    assert _preselected_list(owner_client) == str(lists["Middle"].pk)


def test_a_new_list_is_created_with_its_key_field(owner_client, owner):
    response = _post(owner_client, CHOOSE, {"new-name": "Texts", "new-key_field": "phone", "create": "1"})
    created = SubscriberList.objects.get(owner=owner, name="Texts")
    assert created.key_field == "phone"
    assert response["Location"] == f"{UPLOAD}?list={created.pk}"


def test_a_new_list_name_with_a_slash_is_refused_on_the_form(owner_client, owner):
    response = _post(owner_client, CHOOSE, {"new-name": "a/b", "new-key_field": "email", "create": "1"})
    assert "Must not contain &#x27;/&#x27;" in _form_error(response)
    assert not SubscriberList.objects.filter(owner=owner).exists()


def test_a_new_list_whose_name_exists_is_refused_on_the_form(owner_client, news):
    response = _post(owner_client, CHOOSE, {"new-name": "News", "new-key_field": "email", "create": "1"})
    assert "List &#x27;News&#x27; already exists" in _form_error(response)


# --- steps 3 and 4: preview, mapping, options, start ----------------------------------------------

def _to_preview(client: Client, subscriber_list, content: bytes, name: str = "people.csv") -> str:
    response = _upload(client, subscriber_list, content, name)
    assert response.status_code == 302, _form_error(response)
    return response["Location"]


def test_preview_shows_encoding_delimiter_mapping_and_first_rows(owner_client, news):
    url = _to_preview(owner_client, news, "E-mail;Vorname;Tier\r\na@x.io;Änne;gold\r\n".encode("utf-8-sig"))
    html = owner_client.get(url).content.decode()
    assert '<dd id="detected-encoding">UTF-8 with BOM</dd>' in html
    assert '<dd id="detected-delimiter">semicolon</dd>' in html
    assert '<label for="id_col_0">E-mail:</label>' in html
    assert re.search(r'<select name="col_0"[^>]*>.*?<option value="email" selected>', html, re.S)
    assert re.search(r'<select name="col_2"[^>]*>.*?<option value="custom:tier" selected>', html, re.S)
    assert "Änne" in html and 'id="key-warning"' not in html


def test_accented_french_headers_are_preselected_as_their_fields_on_the_column_step(owner_client, news):
    content = "Courriel;Prénom;Nom;Téléphone;Téléphone fixe\r\nann@x.io;Anne;Lévy;+33612345678;0140000000\r\n"
    url = _to_preview(owner_client, news, content.encode("utf-8"))
    html = owner_client.get(url).content.decode()
    expected = ["email", "standard:first_name", "standard:last_name", "phone", "custom:telephone_fixe"]
    for index, target in enumerate(expected):
        assert re.search(rf'<select name="col_{index}"[^>]*>.*?<option value="{target}" selected>', html, re.S), target
    assert "t_l_phone" not in html and "pr_nom" not in html


def test_the_whole_wizard_imports_with_the_changed_mapping(owner_client, news):
    url = _to_preview(owner_client, news, b"mail,who,tier\na@x.io,Ann,gold\n")
    response = _post(owner_client, url, {"col_0": "email", "col_1": "name", "col_2": "ignore"})
    assert response.status_code == 302 and response["Location"] == f"{url}options/"
    response = _post(owner_client, f"{url}options/", {"update_existing": "on"})
    job = ImportJob.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/admin/imports/importjob/{job.pk}/change/"
    assert job.options["mapping"] == {"mail": "email", "who": "name", "tier": "ignore"}
    assert job.options["update_existing"] is True
    run_now(job)
    subscriber = Subscriber.objects.get(list=news)
    assert (subscriber.email, subscriber.name, subscriber.custom_fields) == ("a@x.io", "Ann", {})
    assert owner_client.get(response["Location"]).status_code == 200
    assert owner_client.get(url).status_code == 302  # the upload is used up


def test_the_column_step_keeps_a_bad_phone_as_written_where_the_operator_ticks_it(owner_client, news):
    url = _to_preview(owner_client, news, b"email,Phone,Mobile\nann@x.io,not a phone,also not\nben@x.io,+14155550123,\n")
    assert 'name="keep_1"' in owner_client.get(url).content.decode()

    _post(owner_client, url, {"col_0": "email", "col_1": "phone", "col_2": "custom:mobile", "keep_1": "on"})
    options = owner_client.get(f"{url}options/").content.decode()
    _post(owner_client, f"{url}options/", {"update_existing": "on"})
    job = run_now(ImportJob.objects.get())

    assert "kept as written" in options and "for Phone;" in options
    assert job.options["keep_raw"] == ["Phone"]
    assert (job.status, job.created, job.invalid, job.warnings) == ("completed", 2, 0, 1)
    ann = Subscriber.objects.get(list=news, email="ann@x.io")
    assert (ann.phone, ann.custom_fields) == ("", {"mobile": "also not", "phone_raw": "not a phone"})
    assert Subscriber.objects.get(list=news, email="ben@x.io").phone == "+14155550123"


def test_a_row_with_a_nul_previews_and_imports_as_an_invalid_row(owner_client, news):
    rows = b"".join(b"p%d@x.io,P%d\n" % (i, i) for i in range(20))
    url = _to_preview(owner_client, news, b"email,name\nann@x.io,An\x00n\n" + rows)
    assert owner_client.get(url).status_code == 200
    _post(owner_client, url, {"col_0": "email", "col_1": "name"})
    _post(owner_client, f"{url}options/", {"update_existing": "on"})

    job = run_now(ImportJob.objects.get())

    assert (job.status, job.created, job.invalid) == ("partially_completed", 20, 1)
    assert job.row_errors.get().reason == "NUL character in column 'name'"


def test_a_file_without_a_key_column_is_warned_and_cannot_go_on_until_one_is_mapped(owner_client, news):
    url = _to_preview(owner_client, news, b"who,contact\nAnn,a@x.io\n")
    assert 'id="key-warning"' in owner_client.get(url).content.decode()
    response = _post(owner_client, url, {"col_0": "name", "col_1": "custom:contact"})
    assert "No column is mapped to email, the key field of &#x27;News&#x27;" in _form_error(response)
    assert owner_client.get(f"{url}options/")["Location"] == url  # options wait for a good mapping
    assert not ImportJob.objects.exists() and len(stored_files()) == 1
    response = _post(owner_client, url, {"col_0": "name", "col_1": "email"})
    assert response["Location"] == f"{url}options/"


def test_discarding_an_upload_removes_its_file(owner_client, news):
    url = _to_preview(owner_client, news, b"who,contact\nAnn,a@x.io\n")
    response = owner_client.post(f"{url}discard/", {"csrfmiddlewaretoken": page_csrf_token(owner_client, url)})
    assert response["Location"] == f"{UPLOAD}?list={news.pk}"
    assert stored_files() == [] and not ImportJob.objects.exists()


def _already_imported_notices(response) -> list[str]:
    html = response.content.decode()
    return re.findall(r'<p class="import-warning" id="already-imported"[^>]*>(.*?)</p>', html, re.S)


def test_the_same_file_again_needs_the_force_option(owner_client, news):
    content = b"email\na@x.io\nnot-an-email\n"
    first = _to_preview(owner_client, news, content)
    _post(owner_client, first, {"col_0": "email"})
    _post(owner_client, f"{first}options/", {"update_existing": "on"})
    earlier = run_now(ImportJob.objects.get())
    second = _to_preview(owner_client, news, content)
    [notice] = _already_imported_notices(owner_client.get(second))
    assert "(partially completed)" in notice and "in the next step" in notice
    _post(owner_client, second, {"col_0": "email"})
    response = _post(owner_client, f"{second}options/", {"update_existing": "on"})
    # Said once, in words, with a link to the earlier import; the form error only says what to do.
    [notice] = _already_imported_notices(response)
    assert f'<a href="/admin/imports/importjob/{earlier.pk}/change/">' in notice
    assert "(partially completed)" in notice and "partially_completed" not in response.content.decode()
    assert _form_error(response) == "Tick “Import this file again” to import it anyway."
    assert response.content.decode().count(str(earlier.pk)) == 1  # in the link only, never as text
    assert ImportJob.objects.count() == 1 and len(stored_files()) == 1  # the second upload waits (the first ran)
    response = _post(owner_client, f"{second}options/", {"update_existing": "on", "force": "on"})
    assert response.status_code == 302 and ImportJob.objects.count() == 2


def test_another_session_cannot_use_an_uploadpage_csrf_token(owner_client, owner, news):
    url = _to_preview(owner_client, news, b"email\na@x.io\n")
    other = browser_for(owner)  # same user, another browser: the token is in the first session only
    assert other.get(url)["Location"] == CHOOSE


def test_cancel_action_on_a_pending_job(owner_client, owner, tmp_path):
    from imports.tests.helpers import import_file, write

    job = import_file(owner, write(tmp_path, "email\na@x.io\n"))
    _post(owner_client, "/admin/imports/importjob/", {"action": "cancel_jobs", "_selected_action": [str(job.pk)]})
    job.refresh_from_db()
    assert job.status == ImportStatus.CANCELLED
