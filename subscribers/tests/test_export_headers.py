"""Header cells of every export are neutralised against spreadsheet formulas like the values:
a field key chosen by whoever filled the list names a column of the list export, the uploaded
file's own header names the columns of the import row-error report, and a resource's column
names head the admin's django-import-export files."""

import pytest
from django.contrib.admin import helpers
from import_export import fields, resources

from imports.tests.helpers import import_file, run_now, write
from imports.tests.support import job_url
from inboxerr.csvsafe import SafeExportMixin
from subscribers.models import SubscriberList, Suppression
from subscribers.tests.helpers import BASE, export_url
from subscribers.tests.factories import SuppressionFactory

pytestmark = pytest.mark.django_db

HYPERLINK = '=HYPERLINK("http://x","y")'
# csv quotes the cell (it holds quotes); the quote prefix keeps a spreadsheet from evaluating it.
LIST_HEADER = (b'email,phone,name,status,created_at,updated_at,'
               b'"\'=HYPERLINK(""http://x"",""y"")",\'@SUM(1),plan\r\n')


@pytest.fixture
def evil_keys(api):
    """Field keys as an API caller may name them: they become the export's column names."""
    response = api.post(BASE, {"list": "News", "email": "ann@x.io",
                               "custom_fields": {HYPERLINK: "v", "@SUM(1)": "w", "plan": "pro"}}, format="json")
    assert response.status_code == 201, response.content


def test_the_list_export_neutralises_field_keys_in_its_header_row(api, evil_keys):
    body = b"".join(api.get(export_url("News")).streaming_content)

    assert body.split(b"\n", 1)[0] + b"\n" == LIST_HEADER
    assert body.endswith(b",v,w,pro\r\n")


def test_the_admin_list_export_action_has_the_same_header_row(client, owner, evil_keys):
    client.force_login(owner)
    lst = SubscriberList.objects.get(name="News")
    response = client.post("/admin/subscribers/subscriberlist/",
                                 {"action": "export_list", helpers.ACTION_CHECKBOX_NAME: [lst.pk]})

    assert b"".join(response.streaming_content).split(b"\n", 1)[0] + b"\n" == LIST_HEADER


@pytest.mark.django_db(transaction=True)
def test_the_row_error_report_neutralises_the_files_own_header(api, owner, tmp_path, settings):
    settings.IMPORT_DIR = tmp_path / "imports"
    job = run_now(import_file(owner, write(tmp_path, "email,@SUM(1),-2+3\nnot-an-email,x,y\n")))

    raw = b"".join(api.get(job_url(job, "/errors")).streaming_content)

    assert raw.split(b"\n", 1)[0] == b"\xef\xbb\xbfrow,kind,column,reason,email,'@SUM(1),'-2+3\r"


class FormulaColumns(SafeExportMixin, resources.ModelResource):
    """A resource whose column names a spreadsheet would evaluate."""

    address = fields.Field(attribute="address", column_name="@SUM(1)")
    channel = fields.Field(attribute="channel", column_name=HYPERLINK)

    class Meta:
        model = Suppression
        fields = ("address", "channel")


def test_django_import_export_resources_neutralise_their_header_row(owner):
    SuppressionFactory(owner=owner, channel="email", address="=cmd@x.io")

    dataset = FormulaColumns().export()

    assert dataset.headers == ["'@SUM(1)", "'" + HYPERLINK]
    assert dataset.csv.split("\n", 1)[0] == "'@SUM(1),\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\"\r"
    assert dataset.dict[0]["'@SUM(1)"] == "'=cmd@x.io"
