import pytest

from imports.models import ImportRowError, ImportStatus
from imports.tests.helpers import import_file, run_now, write
from subscribers.models import Subscriber, SubscriberList, Suppression

pytestmark = pytest.mark.django_db(transaction=True)


def test_import_counts_created_duplicates_and_invalid_rows(owner, tmp_path, settings):
    settings.IMPORT_CHUNK_ROWS = 2
    path = write(tmp_path, "Email,First Name,Plan\na@x.io,Ann,pro\nb@x.io,Bo,\nA@X.io,Again,\nbad,Nope,\nc@x.io,,free\n")
    job = run_now(import_file(owner, path))
    assert job.status == ImportStatus.PARTIALLY_COMPLETED
    assert (job.processed_rows, job.created, job.updated, job.duplicates, job.invalid) == (5, 3, 0, 1, 1)
    assert job.file_path == "" and not path.with_name("x").exists()
    a = Subscriber.objects.get(key="a@x.io")
    assert a.name == "Ann" and a.standard_fields == {"first_name": "Ann"} and a.custom_fields == {"plan": "pro"}
    assert SubscriberList.objects.get(name="News").subscriber_count == 3
    error = ImportRowError.objects.get(job=job)
    assert error.row == 5 and "not a valid email" in error.reason and error.values["Email"] == "bad"


def test_reimport_updates_changed_rows_only_and_keeps_unsubscribed(owner, tmp_path):
    run_now(import_file(owner, write(tmp_path, "email,name,status\na@x.io,Ann,unsubscribed\nb@x.io,Bo,\n")))
    assert Suppression.objects.filter(address="a@x.io", reason="unsubscribed").exists()
    job = run_now(import_file(owner, write(tmp_path, "email,name,status,city\na@x.io,Ann,active,\nb@x.io,Bob,,Oslo\nc@x.io,Cy,,\n", "two.csv")))
    assert (job.created, job.updated, job.stats["unchanged"]) == (1, 1, 1)
    assert Subscriber.objects.get(key="a@x.io").status == "unsubscribed"
    b = Subscriber.objects.get(key="b@x.io")
    assert b.name == "Bob" and b.custom_fields == {"city": "Oslo"} and b.status == "active"
    assert SubscriberList.objects.get().subscriber_count == 3


def test_two_imports_into_the_same_list_at_once_count_each_subscriber_once(owner, tmp_path, settings):
    import threading

    from django.db import connections

    settings.IMPORT_CHUNK_ROWS = 50
    rows = "".join(f"user{i}@x.io,Name{i}\n" for i in range(600))
    reversed_rows = "".join(f"user{i}@x.io,Other{i}\n" for i in reversed(range(300, 900)))
    first = import_file(owner, write(tmp_path, "email,name\n" + rows, "a.csv"))
    second = import_file(owner, write(tmp_path, "email,name\n" + reversed_rows, "b.csv"))
    results = {}

    def run(job):
        try:
            results[job.pk] = run_now(job)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(job,)) for job in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    a, b = results[first.pk], results[second.pk]
    assert {a.status, b.status} == {ImportStatus.COMPLETED}
    assert a.created + b.created == 900
    assert a.updated + b.updated + a.stats["unchanged"] + b.stats["unchanged"] == 300
    assert Subscriber.objects.count() == 900
    assert SubscriberList.objects.get().subscriber_count == 900
