"""The import wizard in a real browser, CSRF and all: a messy CSV from the import jobs page to the
job's final counts, run by the real worker; and the messages a bad file gets on the form."""



from imports.models import ImportJob, ImportStatus
from inboxerr.tests.browser import BROWSER_TEST, assert_not_clipped, screenshot, wait_for_js
from subscribers.models import Subscriber, SubscriberList
from subscribers.tests.factories import SubscriberListFactory

pytestmark = BROWSER_TEST

# A UTF-8 BOM, headers with stray spaces and odd spelling, a column to leave out, the same address
# twice in other case and once repeated exactly, two invalid addresses, an accented name, and a
# quoted name spanning two lines.
MESSY_CSV = (
    "\ufeff E-Mail Address ,First Name,Phone,Plan,Notes\r\n"
    "ann@example.com,Ann,+44 20 7946 0018,gold,call first\r\n"
    "bob@example.com,Bob,,silver,\r\n"
    "ANN@Example.com,Ann again,,gold,\r\n"
    "not-an-email,Zed,,bronze,\r\n"
    "zoe@example.com,Zoë,,gold,\r\n"
    "also@bad,Yan,,bronze,\r\n"
    '"multi@example.com","Line\r\nBreak",,silver,"two\r\nlines"\r\n'
    "bob@example.com,Bob,,silver,\r\n"
).encode("utf-8")

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"


def _choose_file(page, name: str, content: bytes) -> None:
    page.get_by_label("CSV file").set_input_files({"name": name, "mimeType": "text/csv", "buffer": content})


def _wait_for_final_status(page, timeout: float = 30) -> str:
    """Wait, without reloading, until the job's live panel shows a finished status; that status."""
    finished = [value for value, _ in ImportStatus.choices if value not in ("pending", "processing")]
    wait_for_js(page, f"{finished!r}.includes(document.querySelector('#job-panel')?.dataset.status)",
                timeout=timeout * 1000)
    return page.locator('#job-panel [data-field="status"]').inner_text().strip()


def _figure(page, field: str) -> str:
    return page.locator(f'#job-panel [data-result="{field}"]').inner_text().strip()


def test_a_messy_csv_goes_through_every_step_to_the_final_counts(admin_page, live_stack, staff_user):
    page = admin_page
    page.goto(live_stack.url("/admin/imports/importjob/"))
    page.get_by_role("link", name="Import a CSV").click()

    # 1: a new list, from the keyboard: type the name, pick the key, Enter submits.
    page.get_by_label("Name of the new list").fill("Messy import")
    page.get_by_label("Email").check()
    screenshot(page, "import-1-list")
    page.get_by_label("Name of the new list").press("Enter")
    page.wait_for_url("**/upload/?list=*")
    assert SubscriberList.objects.get(owner=staff_user, name="Messy import").key_field == "email"

    # 2: the upload.
    assert "Up to" in page.locator("#id_file_helptext").inner_text()
    _choose_file(page, "messy people.csv", MESSY_CSV)
    screenshot(page, "import-2-upload")
    page.get_by_role("button", name="Upload and preview").click()

    # 3: what was detected, each column's select found by its label; leave the notes out.
    page.wait_for_url("**/upload/*/")
    assert page.locator("#detected-encoding").inner_text() == "UTF-8 with BOM"
    assert page.locator("#detected-delimiter").inner_text() == "comma"
    assert page.get_by_label("E-Mail Address").input_value() == "email"
    assert page.get_by_label("First Name").input_value() == "standard:first_name"
    assert page.get_by_label("Phone").input_value() == "phone"
    assert page.get_by_label("Plan").input_value() == "custom:plan"
    assert page.locator("#import-preview tbody tr").count() == 8
    assert "Zoë" in page.locator("#import-preview").inner_text()
    page.get_by_label("Notes").select_option("ignore")
    assert_not_clipped(page)
    screenshot(page, "import-3-columns")
    page.get_by_role("button", name="Continue to the options").click()

    # 4: options, then start.
    page.wait_for_url("**/options/")
    assert page.get_by_label("Update subscribers already on the list").is_checked()
    assert "Notes" in page.locator(".import-facts").inner_text()  # listed under "Not imported"
    screenshot(page, "import-4-options")
    page.get_by_role("button", name="Start the import").click()

    # The job's page, until the worker is done.
    page.wait_for_url("**/admin/imports/importjob/*/change/")
    assert "started" in page.locator(".messagelist").inner_text()
    assert _wait_for_final_status(page) == "Partially completed"
    assert [_figure(page, f) for f in ("created", "updated", "duplicates", "invalid")] == ["4", "0", "2", "2"]
    screenshot(page, "import-5-job")

    job = ImportJob.objects.get(list__name="Messy import")
    assert (job.status, job.created, job.duplicates, job.invalid) == ("partially_completed", 4, 2, 2)
    stored = {s.email: s for s in Subscriber.objects.filter(list=job.list)}
    assert sorted(stored) == ["ann@example.com", "bob@example.com", "multi@example.com", "zoe@example.com"]
    assert stored["ann@example.com"].phone == "+442079460018"
    assert stored["ann@example.com"].custom_fields == {"plan": "gold"}  # no notes
    assert stored["zoe@example.com"].standard_fields["first_name"] == "Zoë"
    assert stored["multi@example.com"].standard_fields["first_name"] == "Line\r\nBreak"  # as the file had it


def test_bad_files_get_a_message_on_the_form(admin_page, live_stack, staff_user):
    news = SubscriberListFactory(owner=staff_user, name="News")
    page = admin_page
    upload = live_stack.url(f"/admin/imports/importjob/upload/?list={news.pk}")

    page.goto(upload)
    _choose_file(page, "photo.png", PNG)
    page.get_by_role("button", name="Upload and preview").click()
    assert "This is not a text file" in page.locator(".field-file .errorlist").inner_text()
    screenshot(page, "import-2-upload-not-a-text-file")

    _choose_file(page, "empty.csv", b"")
    page.get_by_role("button", name="Upload and preview").click()
    assert page.locator(".field-file .errorlist").inner_text() == "The file is empty"

    page.get_by_role("button", name="Upload and preview").click()  # nothing chosen
    assert page.locator(".field-file .errorlist").inner_text() == "Choose a CSV file to upload."

    _choose_file(page, "contacts.csv", b"who,contact\nAnn,ann@example.com\n")
    page.get_by_role("button", name="Upload and preview").click()
    page.wait_for_url("**/upload/*/")
    assert "No column is mapped to email" in page.locator("#key-warning").inner_text()
    page.get_by_role("button", name="Continue to the options").click()
    assert "the import cannot start without it" in page.locator(".errorlist.nonfield").inner_text()
    screenshot(page, "import-3-no-key-column")
    assert not ImportJob.objects.exists()

    page.get_by_label("contact").select_option("email")
    page.get_by_role("button", name="Continue to the options").click()
    page.wait_for_url("**/options/")


def _job(subscriber_list, filename: str, status: str, **counts) -> ImportJob:
    return ImportJob.objects.create(owner=subscriber_list.owner, list=subscriber_list, list_name=subscriber_list.name,
                                    filename=filename, status=status, **counts)


def test_the_jobs_list_and_the_list_step_fit_the_window_at_1366_px(admin_page, live_stack, staff_user):
    long_name = ("Clients et prospects de la région Auvergne-Rhône-Alpes inscrits à la lettre "
                 "d'information mensuelle depuis le salon professionnel de Lyon 2026, relances comprises")
    recent = SubscriberListFactory(owner=staff_user, name="Recent")
    crowded = SubscriberListFactory(owner=staff_user, name=long_name)  # the newest list, but not the last used
    _job(crowded, "export-contacts-novembre-2026-fichier-complet-avec-doublons.csv", "partially_completed",
         processed_rows=123_456, created=100_000, updated=12_345, duplicates=1_111, invalid=10_000, progress=100.0)
    _job(recent, "people.csv", "completed", processed_rows=4, created=4, progress=100.0)
    page = admin_page

    page.goto(live_stack.url("/admin/imports/importjob/"))
    widths = page.evaluate("""() => ({table: document.querySelector('#result_list').scrollWidth,
                                      box: document.querySelector('#changelist .results').clientWidth})""")
    assert widths["table"] <= widths["box"], widths  # the table fits its box, with no scrollbar
    status = page.locator(".import-status", has_text="Partially completed")
    assert status.evaluate("e => e.getClientRects().length") == 1  # on one line
    assert_not_clipped(page)
    screenshot(page, "import-jobs-list")

    page.goto(live_stack.url("/admin/imports/importjob/import/"))
    choice = page.get_by_label("Existing list")
    assert choice.locator("option:checked").inner_text().startswith("Recent")  # the newest import's list
    assert_not_clipped(page)
    select_right = choice.evaluate("e => e.getBoundingClientRect().right")
    assert select_right <= page.evaluate("document.documentElement.clientWidth")
