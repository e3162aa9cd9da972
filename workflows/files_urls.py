"""Route of the download links that create_file steps hand out (included from config/urls.py)."""
from django.urls import path

from workflows.files import file_download

urlpatterns = [
    # <token> is signed and carries the file's path and expiry; <name> is only what browsers show.
    path("files/<str:token>/<str:name>", file_download, name="file-download"),
]
