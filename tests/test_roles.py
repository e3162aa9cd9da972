"""One rule for roles everywhere: staff are admins, groups decide, no group means editor."""
import pytest
from django.contrib.auth.models import AnonymousUser, Group, User

from config.roles import user_is_editor, user_role

pytestmark = pytest.mark.django_db

PEOPLE = {
    "no group": ([], False, False, "editor"),
    "viewer": (["viewer"], False, False, "viewer"),
    "editor": (["editor"], False, False, "editor"),
    "admin group": (["admin"], False, False, "admin"),
    "viewer and editor": (["viewer", "editor"], False, False, "editor"),
    "staff": ([], True, False, "admin"),
    "superuser in viewer": (["viewer"], False, True, "admin"),
}


@pytest.mark.parametrize("name", PEOPLE)
def test_each_person_gets_the_documented_role(name):
    groups, staff, superuser, expected = PEOPLE[name]
    user = User.objects.create_user(name.replace(" ", "-"), is_staff=staff, is_superuser=superuser)
    user.groups.set([Group.objects.get_or_create(name=group)[0] for group in groups])
    assert user_role(user) == expected
    assert user_is_editor(user) == (expected != "viewer")


def test_visitors_have_no_role():
    assert user_role(AnonymousUser()) is None
    assert not user_is_editor(AnonymousUser())
