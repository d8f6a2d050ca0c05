"""Merge fields: Django templates rendered from plain dicts, HTML escaped and text not, defaults,
required vs optional fields, no access to server files, per-message variables over fields."""

import pytest
from django.template import TemplateDoesNotExist

from campaigns import dispatch, services, tasks
from campaigns.models import Message, MessageStatus
from campaigns.rendering import (
    TemplateError,
    compile_parts,
    missing_variables,
    recipient_lacks,
    recipient_context,
    template_variables,
)
from inboxerr.actors import Actor
from subscribers.tests.factories import SubscriberFactory, SubscriberListFactory

# --- Escaping and defaults -----------------------------------------------------------------------


def test_html_body_is_autoescaped_and_text_body_and_subject_are_not():
    compiled = compile_parts(subject="For {{ name }}", body_text="Hi {{ name }} & {{ note }}",
                             body_html="<p>Hi {{ name }} & {{ note }}</p>")
    subject, text, html = compiled.render({"name": "<b>Ann & Co</b>", "note": "5 > 3"})
    assert subject == "For <b>Ann & Co</b>"
    assert text == "Hi <b>Ann & Co</b> & 5 > 3"
    assert html == "<p>Hi &lt;b&gt;Ann &amp; Co&lt;/b&gt; & 5 &gt; 3</p>"


def test_default_filter_fills_a_missing_or_empty_field():
    compiled = compile_parts(body_text='Hello {{ name|default:"there" }}!')
    assert compiled.render({})[1] == "Hello there!"
    assert compiled.render({"name": ""})[1] == "Hello there!"
    assert compiled.render({"name": "Bob"})[1] == "Hello Bob!"


def test_a_missing_field_without_default_renders_empty_not_an_error_marker():
    compiled = compile_parts(body_text="Order {{ order_no }}.")
    assert compiled.render({})[1] == "Order ."


def test_subject_is_rendered_on_one_line():
    compiled = compile_parts(subject="Hi\n{{ name }}\n  there")
    assert compiled.render({"name": "Ann"})[0] == "Hi Ann there"


# --- Variables: required vs optional -------------------------------------------------------------


def test_variables_lists_every_merge_field_with_whether_it_is_required():
    compiled = compile_parts(
        subject="Order {{ order_no }}",
        body_text='Hi {{ name|default:"there" }}, {{ coupon }} {% for item in items %}{{ item }}{% endfor %}',
        body_html='<p>{{ city|default_if_none:"-" }}</p>',
    )
    assert template_variables(compiled) == {
        "city": False, "coupon": True, "items": True, "name": False, "order_no": True,
    }


def test_a_field_used_both_with_and_without_default_is_required():
    compiled = compile_parts(body_text='{{ order_no|default:"-" }} / {{ order_no }}')
    assert template_variables(compiled) == {"order_no": True}


def test_loop_and_with_variables_are_not_merge_fields():
    compiled = compile_parts(body_text="{% for row in rows %}{{ row.x }}{{ forloop.counter }}{% endfor %}"
                                       "{% with total=amount %}{{ total }}{% endwith %}")
    assert template_variables(compiled) == {"amount": True, "rows": True}


def test_a_field_tested_in_if_is_optional():
    compiled = compile_parts(body_text="{% if vip %}Thanks for being VIP{% endif %}")
    assert template_variables(compiled) == {"vip": False}


def test_a_field_used_only_inside_its_own_if_guard_is_optional():
    # "{% if coupon %}...{{ coupon }}{% endif %}" renders nothing for a recipient without a coupon,
    # so an audience without the field must not be refused for it.
    compiled = compile_parts(body_text="Hi{% if coupon %}, your code is {{ coupon }}{% endif %}.")
    assert compiled.render({})[1] == "Hi."
    assert template_variables(compiled) == {"coupon": False}


def test_missing_variables_names_required_fields_the_audience_lacks_but_not_recipient_fields():
    required = {"order_no": True, "coupon": True, "city": False, "name": True, "email": True, "unsubscribe_url": True}
    assert missing_variables(required, {"order_no"}) == ["coupon"]
    assert missing_variables(required, {"order_no", "coupon"}) == []


def test_a_recipient_with_a_blank_phone_or_name_lacks_it_but_never_the_unsubscribe_link():
    required = ["phone", "name", "email", "unsubscribe_url", "order_no"]
    assert recipient_lacks(required, fields=["order_no"], email="a@x.io") == ["name", "phone"]
    assert recipient_lacks(required, fields=[], email="a@x.io", phone="+14155552671", name="Ann") == ["order_no"]
    # A list field called phone fills a blank phone, as it does when the message is rendered.
    assert recipient_lacks(["phone"], fields=["phone"]) == []


# --- Templates that do not compile; server files -------------------------------------------------


def test_a_template_that_does_not_compile_names_the_part_line_and_reason():
    with pytest.raises(TemplateError) as raised:
        compile_parts(subject="ok", body_text="Hello\n{% if vip %}\nno end")
    assert raised.value.part == "body_text"
    assert "line 2" in str(raised.value) and "Unclosed tag" in str(raised.value)
    with pytest.raises(TemplateError) as raised:
        compile_parts(body_html="<p>{{ name|shout }}</p>")
    assert raised.value.part == "body_html" and "Invalid filter: 'shout'" in str(raised.value)


@pytest.mark.parametrize("tag", ['{% include "/etc/passwd" %}', '{% include "manage.py" %}', '{% extends "/etc/hostname" %}'])
def test_include_and_extends_cannot_read_files_on_the_server(tag):
    try:
        compiled = compile_parts(body_text=f"start {tag} end")
        output = compiled.render({})
    except (TemplateError, TemplateDoesNotExist):
        return  # refused: no loader can reach the file system
    assert "root:" not in output[1] and "django" not in output[1].lower()


def test_a_template_cannot_load_tag_libraries():
    with pytest.raises(TemplateError) as raised:
        compile_parts(body_text="{% load static %}{% static 'x' %}")
    assert "static" in str(raised.value)


# --- Context: fields, per-message variables, the recipient's own values ----------------------------


def test_per_message_variables_override_standard_and_custom_fields():
    context = recipient_context(
        email="ann@x.io", name="Ann", standard_fields={"city": "Oslo", "order_no": "S1"},
        custom_fields={"order_no": "C1", "tier": "gold"}, variables={"order_no": "V1"},
    )
    assert context["order_no"] == "V1"
    assert (context["city"], context["tier"], context["email"], context["name"]) == ("Oslo", "gold", "ann@x.io", "Ann")


def test_a_field_named_like_the_recipient_address_does_not_redirect_the_message():
    context = recipient_context(email="ann@x.io", name="Ann", custom_fields={"email": "evil@x.io", "name": "Eve"})
    assert (context["email"], context["name"]) == ("ann@x.io", "Ann")


def test_the_context_is_a_plain_dict_of_plain_values():
    context = recipient_context(email="a@x.io", custom_fields={"n": 1}, unsubscribe_url="http://u")
    assert type(context) is dict
    assert all(isinstance(v, (str, int, float, bool, type(None), list, dict)) for v in context.values())


@pytest.mark.django_db(transaction=True)
def test_dispatch_renders_each_message_with_its_variables_over_the_subscribers_fields(owner, sms_outbox):
    lst = SubscriberListFactory(owner=owner, name="Phones", key_field="phone")
    ann = SubscriberFactory(list=lst, email="", phone="+14155552671", name="Ann", custom_fields={"order_no": "F1"})
    bob = SubscriberFactory(list=lst, email="", phone="+14155552672", name="Bob", custom_fields={"order_no": "F2"})
    actor = Actor(user=owner, source="api")
    campaign = services.campaign_create(actor=actor, owner=owner, name="sms", channel="sms",
                                        message_content="Hi {{ name }}, order {{ order_no }}", list_names=["Phones"])
    services.campaign_start(actor=actor, campaign=campaign)
    tasks.fan_out(str(campaign.pk))
    Message.objects.filter(subscriber_id=bob.pk).update(variables={"order_no": "V2"})

    dispatch.dispatch(run_seconds=5)

    assert sorted((m.recipient, m.body_text) for m in sms_outbox) == [
        ("+14155552671", "Hi Ann, order F1"), ("+14155552672", "Hi Bob, order V2"),
    ]
    assert Message.objects.get(subscriber_id=ann.pk).status == MessageStatus.SENT


@pytest.mark.django_db(transaction=True)
def test_a_message_without_subscriber_renders_from_its_variables_alone(owner, sms_outbox):
    """Seed 001 §7: a CSV row phone,name,order_no is stored as variables and rendered from them."""
    lst = SubscriberListFactory(owner=owner, name="Phones", key_field="phone")
    SubscriberFactory(list=lst, email="", phone="+14155550000", name="Placeholder", custom_fields={"order_no": "x"})
    actor = Actor(user=owner, source="api")
    campaign = services.campaign_create(actor=actor, owner=owner, name="sms", channel="sms",
                                        message_content="Hi {{ name }}, order {{ order_no }}", list_names=["Phones"])
    services.campaign_start(actor=actor, campaign=campaign)
    tasks.fan_out(str(campaign.pk))
    Message.objects.filter(campaign=campaign).update(subscriber=None, recipient="+15555555555",
                                                     variables={"name": "Bob", "order_no": "12345"})

    dispatch.dispatch(run_seconds=5)

    assert [(m.recipient, m.body_text) for m in sms_outbox] == [("+15555555555", "Hi Bob, order 12345")]
