"""The logs pages use the same roles as the API and the other pages."""
import pytest
from django.contrib.auth.models import AnonymousUser, Group, User

from api_endpoints.permissions import user_role as api_user_role
from logs.roles import user_can_operate_runs, user_role

pytestmark = pytest.mark.django_db

PEOPLE = {
    "no group": ([], False, False),
    "viewer": (["viewer"], False, False),
    "editor": (["editor"], False, False),
    "admin group": (["admin"], False, False),
    "viewer and editor": (["viewer", "editor"], False, False),
    "staff": ([], True, False),
    "superuser in viewer": (["viewer"], False, True),
}


@pytest.mark.parametrize("name", PEOPLE)
def test_a_person_has_the_same_role_here_as_in_the_api(name):
    groups, staff, superuser = PEOPLE[name]
    user = User.objects.create_user(name.replace(" ", "-"), is_staff=staff, is_superuser=superuser)
    user.groups.set([Group.objects.get_or_create(name=group)[0] for group in groups])
    assert user_role(user) == api_user_role(user)
    assert user_can_operate_runs(user) == (api_user_role(user) in ("editor", "admin"))


def test_only_viewers_and_visitors_cannot_operate_runs():
    viewer = User.objects.create_user("v")
    viewer.groups.add(Group.objects.get_or_create(name="viewer")[0])
    assert not user_can_operate_runs(viewer)
    assert not user_can_operate_runs(AnonymousUser())
    assert user_can_operate_runs(User.objects.create_user("nobody"))  # no group: an editor, as everywhere
