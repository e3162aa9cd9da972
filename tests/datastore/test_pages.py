"""The data pages: data types and fields, the records browser with filters, record forms, CSV in and out."""
import io
import re

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from datastore.models import DataType, Record
from datastore.services import data_type_create, record_create

PASSWORD = "correct horse battery staple"


@pytest.fixture
def signed_in(client, django_user_model):
    client.force_login(django_user_model.objects.create_user(username="ada", password=PASSWORD))
    return client


@pytest.fixture
def viewer(client, django_user_model):
    user = django_user_model.objects.create_user(username="vic", password=PASSWORD)
    user.groups.add(Group.objects.get_or_create(name="viewer")[0])
    client.force_login(user)
    return client


@pytest.fixture
def leads(db):
    data_type = data_type_create(name="lead", fields=[
        {"name": "email", "type": "email", "required": True},
        {"name": "score", "type": "integer"},
        {"name": "tags", "type": "text", "list": True},
        {"name": "vip", "type": "boolean"},
    ])
    for email, score, tags in (("ann@example.com", 80, ["hot"]), ("bob@example.com", 20, []), ("cy@example.com", 55, ["hot", "eu"])):
        record_create(data_type=data_type, fields={"email": email, "score": score, "tags": tags})
    return data_type


def emails(html: str) -> list[str]:
    return sorted(re.findall(r"<td>(\w+@example\.com)</td>", html))


@pytest.mark.django_db
def test_data_page_lists_types_with_fields_and_counts(signed_in, leads):
    html = signed_in.get(reverse("data-page")).content.decode()
    assert "<h1>Data</h1>" in html
    assert '<a href="/data/lead/">lead</a>' in html
    assert "<code>score</code> <small class=\"muted\">integer</small>" in html
    assert re.search(r'<td class="num">3</td>', html)


@pytest.mark.django_db
def test_creating_a_type_then_its_fields(signed_in):
    response = signed_in.post(reverse("data-page"), {"name": "subscription"})
    assert response["Location"] == reverse("data-type-fields", args=["subscription"])
    response = signed_in.post(reverse("data-type-fields", args=["subscription"]), {
        "fields": ["a1", "b2"],
        "f-a1-name": "customer_id", "f-a1-type": "text", "f-a1-required": "on",
        "f-b2-name": "status", "f-b2-type": "text", "f-b2-description": "active or past_due",
    })
    assert response["Location"] == reverse("data-records", args=["subscription"])
    assert DataType.objects.get(name="subscription").fields == [
        {"name": "customer_id", "type": "text", "list": False, "required": True, "description": ""},
        {"name": "status", "type": "text", "list": False, "required": False, "description": "active or past_due"},
    ]


@pytest.mark.django_db
def test_a_bad_field_is_named_next_to_its_input(signed_in, leads):
    """A duplicate field name is refused on that row's name input, and the typed rows stay."""
    response = signed_in.post(reverse("data-type-fields", args=["lead"]), {
        "fields": ["a1", "b2"],
        "f-a1-name": "email", "f-a1-type": "email",
        "f-b2-name": "email", "f-b2-type": "text",
    })
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r'id="f-b2-name-error">duplicate field name &#x27;email&#x27;', html)
    assert len(re.findall(r'name="f-\w+-name" value="email"', html)) == 2
    assert len(DataType.objects.get(name="lead").fields) == 4


@pytest.mark.django_db
def test_bad_type_names_and_taken_ones_are_refused(signed_in, leads):
    assert "Use lowercase letters" in signed_in.post(reverse("data-page"), {"name": "Lead!"}).content.decode()
    assert "already exists" in signed_in.post(reverse("data-page"), {"name": "lead"}).content.decode()


@pytest.mark.parametrize(
    "query, expected",
    [
        ({}, ["ann@example.com", "bob@example.com", "cy@example.com"]),
        ({"field": "score", "lookup": "gte", "value": "50"}, ["ann@example.com", "cy@example.com"]),
        ({"field": "email", "lookup": "icontains", "value": "BOB"}, ["bob@example.com"]),
        ({"field": "tags", "lookup": "contains", "value": "eu"}, ["cy@example.com"]),
        ({"field": "score", "lookup": "in", "value": "20,55"}, ["bob@example.com", "cy@example.com"]),
        ({"field": "vip", "lookup": "isnull", "value": "true"}, ["ann@example.com", "bob@example.com", "cy@example.com"]),
    ],
)
@pytest.mark.django_db
def test_records_browser_filters_with_the_lookups(signed_in, leads, query, expected):
    html = signed_in.get(reverse("data-records", args=["lead"]), query).content.decode()
    assert emails(html) == expected


@pytest.mark.django_db
def test_a_bad_filter_is_explained_next_to_it(signed_in, leads):
    response = signed_in.get(reverse("data-records", args=["lead"]), {"field": "score", "lookup": "gt", "value": "lots"})
    assert response.status_code == 400
    assert re.search(r'id="filter-1-error">expected an integer', response.content.decode())


@pytest.mark.django_db
def test_records_order_by_a_field(signed_in, leads):
    html = signed_in.get(reverse("data-records", args=["lead"]), {"order_by": "-score"}).content.decode()
    assert re.findall(r"<td>(\w+@example\.com)</td>", html) == ["ann@example.com", "cy@example.com", "bob@example.com"]


@pytest.mark.django_db
def test_create_edit_and_delete_a_record_through_its_form(signed_in, leads):
    response = signed_in.post(reverse("data-record-new", args=["lead"]),
                              {"email": "dee@example.com", "score": "7", "tags": "a\nb", "vip": "true"})
    assert response["Location"] == reverse("data-records", args=["lead"])
    record = Record.objects.get(data__email="dee@example.com")
    assert record.data == {"email": "dee@example.com", "score": 7, "tags": ["a", "b"], "vip": True}
    form = signed_in.get(reverse("data-record", args=["lead", record.pk])).content.decode()
    assert re.search(r'<textarea name="tags"[^>]*>\na\nb</textarea>', form)
    signed_in.post(reverse("data-record", args=["lead", record.pk]),
                   {"email": "dee@example.com", "score": "", "tags": "a\nb", "vip": "true"})
    record.refresh_from_db()
    assert "score" not in record.data
    assert "Delete this lead?" in signed_in.get(reverse("data-record-delete", args=["lead", record.pk])).content.decode()
    signed_in.post(reverse("data-record-delete", args=["lead", record.pk]))
    assert not Record.objects.filter(pk=record.pk).exists()


@pytest.mark.django_db
def test_bad_record_values_are_refused_next_to_their_fields(signed_in, leads):
    response = signed_in.post(reverse("data-record-new", args=["lead"]), {"email": "", "score": "many"})
    assert response.status_code == 400
    html = response.content.decode()
    assert re.search(r'id="record_email_error">required<', html)
    assert re.search(r'id="record_score_error">expected an integer, got', html)
    assert 'value="many"' in html
    assert Record.objects.count() == 3


@pytest.mark.django_db
def test_csv_export_then_import_round_trips_and_updates_by_id(signed_in, leads):
    response = signed_in.get(reverse("data-records-export", args=["lead"]), {"field": "score", "lookup": "gte", "value": "50"})
    content = b"".join(response.streaming_content).decode()
    lines = content.strip().splitlines()
    assert lines[0] == "id,created,modified,email,score,tags,vip"
    assert len(lines) == 3 and "ann@example.com,80,\"[\"\"hot\"\"]\"," in content
    changed = content.replace("ann@example.com,80", "ann@example.com,81")
    changed += "\r\n,,,new@example.com,5,\"[\"\"x\"\"]\",true\r\n"
    upload = io.BytesIO(changed.encode())
    upload.name = "leads.csv"
    response = signed_in.post(reverse("data-records-import", args=["lead"]), {"file": upload}, follow=True)
    assert "Imported 3 record(s): 1 new, 2 updated." in response.content.decode()
    assert Record.objects.get(data__email="ann@example.com").data["score"] == 81
    assert Record.objects.get(data__email="new@example.com").data == {
        "email": "new@example.com", "score": 5, "tags": ["x"], "vip": True}


@pytest.mark.django_db
def test_a_csv_with_a_bad_row_imports_nothing_and_says_which_row(signed_in, leads):
    upload = io.BytesIO(b"email,score\nok@example.com,1\nbad,2\n")
    upload.name = "leads.csv"
    response = signed_in.post(reverse("data-records-import", args=["lead"]), {"file": upload})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was imported:" in html and "Row 3: email: expected an email address" in html
    assert not Record.objects.filter(data__email="ok@example.com").exists()
    upload = io.BytesIO(b"email,shoe_size\nok@example.com,1\n")
    upload.name = "leads.csv"
    html = signed_in.post(reverse("data-records-import", args=["lead"]), {"file": upload}).content.decode()
    assert "Unknown column(s): shoe_size" in html


@pytest.mark.django_db
def test_deleting_a_type_referred_to_by_another_is_refused(signed_in, leads):
    data_type_create(name="deal", fields=[{"name": "lead", "type": "record:lead"}])
    response = signed_in.post(reverse("data-type-delete", args=["lead"]))
    assert response.status_code == 400
    assert "referred to by deal.lead" in response.content.decode()
    signed_in.post(reverse("data-type-delete", args=["deal"]))
    assert not DataType.objects.filter(name="deal").exists()


@pytest.mark.django_db
def test_viewers_browse_but_cannot_change_data(viewer, leads):
    html = viewer.get(reverse("data-records", args=["lead"])).content.decode()
    assert "ann@example.com" in html and "New record" not in html and "Import a CSV file" not in html
    record = Record.objects.get(data__email="ann@example.com")
    for url, data in (
        (reverse("data-page"), {"name": "sneaky"}),
        (reverse("data-type-fields", args=["lead"]), {"fields": []}),
        (reverse("data-record-new", args=["lead"]), {"email": "x@example.com"}),
        (reverse("data-record", args=["lead", record.pk]), {"email": "x@example.com"}),
        (reverse("data-record-delete", args=["lead", record.pk]), {}),
        (reverse("data-type-delete", args=["lead"]), {}),
    ):
        assert viewer.post(url, data).status_code == 403, url
    assert Record.objects.count() == 3 and len(DataType.objects.get(name="lead").fields) == 4
