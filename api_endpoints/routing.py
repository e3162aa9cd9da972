"""One URL, one API class per HTTP method: the management API's REST routes over `<Entity><Action>Api`."""
from django.urls import path


def by_method(**views):
    """A view that hands each method to its own API class (GET=WorkflowListApi, POST=WorkflowCreateApi).

    A method no class takes goes to the first class, which authenticates the caller before it answers
    405, as DRF itself does; its Allow header lists the route's methods, not that class's.
    """
    methods = [method.upper() for method in views]
    callbacks = {method.upper(): cls.as_view(route_methods=methods) for method, cls in views.items()}
    fallback = next(iter(callbacks.values()))

    def view(request, *args, **kwargs):
        return callbacks.get(request.method, fallback)(request, *args, **kwargs)

    # DRF's own views are exempt from Django's CSRF and login middleware and check both themselves.
    view.csrf_exempt = True
    view.login_required = False
    view.views_by_method = callbacks
    return view


def both(route: str, view, name: str):
    """The route with and without its trailing slash, never redirecting (DESIGN.md, "HTTP surface").

    Only the slashed pattern carries the name; the schema lists named routes only, so each operation
    appears once.
    """
    return [path(f"{route}/", view, name=name), path(route, view)]
