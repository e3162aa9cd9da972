"""Site pages that belong to no app: the home page and placeholders for sections still to come."""
from django.shortcuts import render

# The five sections of the top navigation, in order. The apps replace each placeholder with their
# own pages at the same path (see config/urls.py), so the navigation keeps working unchanged.
SECTIONS = {
    "workflows": {
        "title": "Workflows",
        "summary": "Build API workflows: typed parameters and an ordered list of actions, published as endpoints.",
    },
    "data": {
        "title": "Data",
        "summary": "The app's own data types and records, which workflows create, change, search and delete.",
    },
    "scheduler": {
        "title": "Scheduler",
        "summary": "One-off scheduled runs, batches over a list, recurring events and record-change triggers.",
    },
    "logs": {
        "title": "Logs",
        "summary": "Every run, step by step: inputs, outputs, errors, timings and workload units.",
    },
    "settings": {
        "title": "Settings",
        "summary": "Secrets, API tokens and the people who can sign in.",
    },
}


def home(request):
    """What Engine Room is, with a link to each section (the dashboard will take its place)."""
    return render(request, "home.html", {"sections": SECTIONS})


def section_placeholder(request, section):
    """A heading and a short note for a section whose pages are not built yet."""
    return render(
        request,
        "section_placeholder.html",
        {"section": section, **SECTIONS[section]},
    )
