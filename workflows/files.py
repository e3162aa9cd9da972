"""Files that steps create: kept through Django's default storage, offered by signed links that expire, pruned."""
import mimetypes
import os
import posixpath
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.text import get_valid_filename
from django.views.decorators.http import require_safe

from config.errors import ApplicationError

# Every created file lives under ROOT/<expiry day>/<expiry time>-<random>/<name>: pruning reads the
# expiry from the path, so it needs no table and no index, and whole past days go in one sweep.
ROOT = "files"
SALT = "engine-room.files.download"
DAY_FORMAT = "%Y-%m-%d"
TIME_FORMAT = "%H%M%S"


class FileTooLarge(ApplicationError):
    """Content over ENGINE_ROOM_FILE_MAX_BYTES; nothing was stored."""


@dataclass(frozen=True)
class StoredFile:
    """A file kept in storage, as a step outputs it."""

    name: str
    path: str
    size: int
    content_type: str
    expires_at: datetime

    @property
    def url(self) -> str:
        return file_download_url(path=self.path, name=self.name, expires_at=self.expires_at)

    def as_output(self) -> dict:
        """The step output: send_email attaches it by `path`; people download it by `url`."""
        return {
            "name": self.name,
            "url": self.url,
            "size": self.size,
            "expires_at": self.expires_at.isoformat().replace("+00:00", "Z"),
            "path": self.path,
            "content_type": self.content_type,
        }


def safe_file_name(name: str, *, extension: str, default: str = "export") -> str:
    """A file name without directories or odd characters, ending in `.extension`."""
    base = get_valid_filename(posixpath.basename(str(name).replace("\\", "/")).strip()) if name else ""
    stem, dot, suffix = base.rpartition(".")
    if not dot or suffix.lower() != extension:
        stem = base
    stem = stem.strip("._-")[:100] or default
    return f"{stem}.{extension}"


def content_type_for(name: str) -> str:
    guessed = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") or guessed == "application/json" else guessed


def check_size(size: int) -> None:
    """Refuse content over the limit, naming both numbers and the setting."""
    limit = settings.ENGINE_ROOM_FILE_MAX_BYTES
    if size > limit:
        raise FileTooLarge(
            f"The file would be {size:,} bytes; the limit is {limit:,} (ENGINE_ROOM_FILE_MAX_BYTES).",
            extra={"size": size, "limit": limit},
        )


def file_store(*, name: str, content: bytes, expires_in: timedelta | None = None) -> StoredFile:
    """Keep `content` under a fresh path that carries its expiry; FileTooLarge over the size limit."""
    check_size(len(content))
    lifetime = expires_in or timedelta(seconds=settings.ENGINE_ROOM_FILE_URL_EXPIRY_SECONDS)
    # Whole seconds: the path and the signed link state the same instant.
    expires_at = (timezone.now() + lifetime).astimezone(UTC).replace(microsecond=0)
    folder = f"{expires_at.strftime(TIME_FORMAT)}-{secrets.token_hex(12)}"
    path = default_storage.save(
        posixpath.join(ROOT, expires_at.strftime(DAY_FORMAT), folder, name), ContentFile(content)
    )
    return StoredFile(
        name=name, path=path, size=len(content), content_type=content_type_for(name), expires_at=expires_at
    )


def file_download_url(*, path: str, name: str, expires_at: datetime) -> str:
    """An absolute link (ENGINE_ROOM_BASE_URL) that serves the file until `expires_at`, signed with SECRET_KEY."""
    token = signing.dumps({"p": path, "e": int(expires_at.timestamp())}, salt=SALT, compress=True)
    location = reverse("file-download", kwargs={"token": token, "name": "-"})
    # The name segment is only what the browser shows; the signed token alone says which file it is.
    location = location[: -len("-")] + quote(name, safe="")
    return settings.ENGINE_ROOM_BASE_URL.rstrip("/") + location


@login_not_required  # the link itself is the credential: recipients of an email have no account
@require_safe
def file_download(request, token: str, name: str):
    """Serve a created file to whoever holds an unexpired signed link; 404 for a bad one, 410 once expired."""
    try:
        claim = signing.loads(token, salt=SALT)
        path, expires = str(claim["p"]), int(claim["e"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise Http404("No such file.") from None
    if timezone.now().timestamp() >= expires:
        return HttpResponse(
            "This download link has expired.\n", status=410, content_type="text/plain; charset=utf-8"
        )
    if not path.startswith(f"{ROOT}/") or not default_storage.exists(path):
        raise Http404("No such file (it may have been pruned).")
    file_name = posixpath.basename(path)
    response = FileResponse(
        default_storage.open(path, "rb"),
        as_attachment=True,
        filename=file_name,
        content_type=content_type_for(file_name),
    )
    remaining = max(0, int(expires - timezone.now().timestamp()))
    response["Cache-Control"] = f"private, max-age={remaining}"
    response["Referrer-Policy"] = "no-referrer"
    return response


def files_prune(*, now: datetime | None = None) -> int:
    """Delete every created file whose expiry has passed; returns how many files were deleted."""
    now = (now or timezone.now()).astimezone(UTC)
    today = now.strftime(DAY_FORMAT)
    deleted = 0
    try:
        days, _ = default_storage.listdir(ROOT)
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for day in sorted(days):
        if _parse_day(day) is None or day > today:
            continue
        folders, _ = default_storage.listdir(f"{ROOT}/{day}")
        for folder in folders:
            expires = _parse_expiry(day, folder)
            if expires is None or (day == today and expires > now):
                continue
            deleted += _delete_folder(f"{ROOT}/{day}/{folder}")
        _remove_if_empty(f"{ROOT}/{day}")
    return deleted


def _parse_day(day: str) -> datetime | None:
    try:
        return datetime.strptime(day, DAY_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def _parse_expiry(day: str, folder: str) -> datetime | None:
    try:
        return datetime.strptime(f"{day} {folder.split('-', 1)[0]}", f"{DAY_FORMAT} {TIME_FORMAT}").replace(tzinfo=UTC)
    except ValueError:
        return None


def _delete_folder(folder: str) -> int:
    subfolders, files = default_storage.listdir(folder)
    count = 0
    for sub in subfolders:
        count += _delete_folder(f"{folder}/{sub}")
    for name in files:
        default_storage.delete(f"{folder}/{name}")
        count += 1
    _remove_if_empty(folder)
    return count


def _remove_if_empty(folder: str) -> None:
    # Storage has no directories to delete; on the local file system empty ones are tidied up.
    try:
        local = default_storage.path(folder)
    except NotImplementedError:
        return
    try:
        os.rmdir(local)
    except OSError:
        pass
