"""The five sections of the top navigation, with the summary the dashboard shows for each."""

# In navigation order.
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
