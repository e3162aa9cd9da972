"""The workflow pages: the list, the one-page editor, test runs, versions (URLs in workflows/urls.py)."""
