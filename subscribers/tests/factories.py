import factory

from inboxerr.tests.factories import UserFactory
from subscribers.models import KeyField, Subscriber, SubscriberList, SubscriberStatus, Suppression


class SubscriberListFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SubscriberList

    owner = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"List {n}")
    key_field = KeyField.EMAIL


class SubscriberFactory(factory.django.DjangoModelFactory):
    """Builds a subscriber row directly (tests of reads); writes under test go through services.
    Keeps the list's counter in step, as the services do."""

    class Meta:
        model = Subscriber

    list = factory.SubFactory(SubscriberListFactory)
    email = factory.Sequence(lambda n: f"person{n}@example.com")
    key = factory.LazyAttribute(lambda s: s.email if s.list.key_field == KeyField.EMAIL else s.phone)
    name = factory.Sequence(lambda n: f"Person {n}")
    status = SubscriberStatus.ACTIVE

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        obj = super()._create(model_class, *args, **kwargs)
        SubscriberList.objects.filter(pk=obj.list_id).update(subscriber_count=obj.list.subscribers.count())
        obj.list.refresh_from_db()
        return obj


class SuppressionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Suppression

    owner = factory.SubFactory(UserFactory)
    channel = "email"
    address = factory.Sequence(lambda n: f"blocked{n}@example.com")
    reason = "manual"
