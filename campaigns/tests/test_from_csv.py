import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from campaigns import dispatch
from campaigns.models import Campaign, Message
from subscribers.models import Suppression

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def import_dir(settings, tmp_path):
    settings.IMPORT_DIR = tmp_path / "uploads"


def _post(api, content: bytes, **fields):
    body = {"name": "csv", "channel": "sms", "message_content": "Hi {{ name }}, order {{ order_no }}", **fields,
            "file": SimpleUploadedFile("r.csv", content, "text/csv")}
    return api.post("/api/v1/campaigns/from-csv", body, format="multipart")


def test_extra_columns_become_each_messages_variables(api, owner, sms_outbox, settings):
    Suppression.objects.create(owner=owner, channel="sms", address="+14155552672", reason="manual")
    response = _post(api, b"phone,name,order_no\n+14155552671,Bob,12345\n+14155552672,Al,9\n+14155552671,Dup,1\n")
    assert response.status_code == 201, response.content
    campaign = Campaign.objects.get()
    assert (campaign.total_count, campaign.skipped_count) == (2, 1)
    message = Message.objects.get(recipient="+14155552671")
    assert message.variables == {"name": "Bob", "order_no": "12345"}
    api.post(f"/api/v1/campaigns/{campaign.pk}/start")
    from campaigns import services

    services.campaign_fan_out(campaign_id=campaign.pk)
    dispatch.dispatch(run_seconds=5)
    assert [(m.recipient, m.body_text) for m in sms_outbox] == [("+14155552671", "Hi Bob, order 12345")]


def test_missing_key_column_or_variable_column_is_refused_before_anything_is_stored(api, settings):
    response = _post(api, b"mobile_no,name,order_no\n+14155552671,Bob,1\n")
    assert response.status_code == 400 and "no phone column" in response.json()["detail"]
    response = _post(api, b"phone,name\n+14155552671,Bob\n")
    assert response.status_code == 400 and response.json()["missing_fields"] == ["order_no"]
    assert not Campaign.objects.exists() and not Message.objects.exists()
    assert not list((settings.IMPORT_DIR).iterdir())  # the upload was removed


def test_from_csv_requires_authentication(anon_api):
    assert _post(anon_api, b"phone\n+14155552671\n").status_code == 401
