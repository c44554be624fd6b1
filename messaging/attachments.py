"""Attachment files: what an upload really is (magic bytes, Pillow), where it is kept
(the "attachments" storage of settings.STORAGES) and the signed, short-lived URLs that
let members fetch it. No database access here: messaging.services and selectors do that.
"""
from __future__ import annotations

import io
import mimetypes
import unicodedata
import warnings
from dataclasses import dataclass
from typing import IO, Any
from urllib.parse import urlencode

import filetype
from django.conf import settings
from django.core import signing
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, storages
from PIL import Image, ImageOps, UnidentifiedImageError

from gochat_site.errors import InvalidParams

# filetype reads at most this many leading bytes.
SNIFF_BYTES = 8192
# The families whose claim (by name or declared type) the content must bear out: they are
# rendered inline by clients, so a .png that is not an image must not pass as one.
MEDIA_FAMILIES = ("image/", "audio/", "video/")
# Images Pillow can measure and thumbnail; other image types are stored as plain files.
MEASURABLE_IMAGES = {"image/png", "image/jpeg", "image/gif", "image/webp", "image/bmp", "image/tiff"}

_SIGNER_SALT = "gochat.attachment"
FILE = "file"
THUMBNAIL = "thumbnail"


def storage() -> Storage:
    return storages["attachments"]


def streams_locally(store: Storage) -> bool:
    """True when downloads are served by this process; else they redirect to the store's
    own (presigned) URL."""
    return isinstance(store, FileSystemStorage)


# --- what a file is ----------------------------------------------------------------------

def clean_name(raw: object) -> str:
    """The base name of the uploader's file name: no directories, no control characters,
    at most 255 characters (extension kept)."""
    text = str(raw or "").replace("\\", "/").rsplit("/", 1)[-1]
    text = "".join(c for c in text if unicodedata.category(c)[0] != "C").strip().strip(".")
    if not text:
        return "file"
    if len(text) > 255:
        stem, dot, ext = text.rpartition(".")
        text = (stem[: 255 - len(ext) - 1] + "." + ext) if dot and len(ext) < 16 else text[:255]
    return text


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the end of the sniffed window is still text.
        return exc.start >= len(head) - 3 and len(head) == SNIFF_BYTES
    return True


def detect_content_type(head: bytes) -> str:
    """The content type of a file from its first bytes; text without a signature is
    text/plain, anything else unknown application/octet-stream."""
    kind = filetype.guess(head)
    if kind is not None:
        return kind.mime
    return "text/plain" if head and _looks_like_text(head) else "application/octet-stream"


def type_allowed(content_type: str) -> bool:
    for allowed in settings.UPLOAD_ALLOWED_TYPES:
        if allowed == content_type or (allowed.endswith("/*") and content_type.startswith(allowed[:-1])):
            return True
    return False


def claimed_family(name: str, declared: str | None) -> str | None:
    """The media family ("image/", ...) the name's extension or the declared type claims."""
    guessed, _ = mimetypes.guess_type(name)
    for claim in (guessed, declared):
        for family in MEDIA_FAMILIES:
            if claim and claim.startswith(family):
                return family
    return None


@dataclass(frozen=True)
class ImageInfo:
    width: int
    height: int
    thumbnail: bytes
    thumbnail_ext: str


def image_info(stream: IO[bytes]) -> ImageInfo:
    """Dimensions (as displayed: EXIF orientation applied) and a thumbnail whose longest
    side is ATTACHMENT_THUMBNAIL_SIZE; InvalidParams when Pillow cannot decode it."""
    size = settings.ATTACHMENT_THUMBNAIL_SIZE
    try:
        with warnings.catch_warnings():
            # Past Image.MAX_IMAGE_PIXELS Pillow only warns: a decompression bomb is bad input.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            stream.seek(0)
            with Image.open(stream) as opened:
                image = ImageOps.exif_transpose(opened)
                image.load()
                width, height = image.size
                image.thumbnail((size, size))
                has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
                out = io.BytesIO()
                if has_alpha:
                    image.convert("RGBA").save(out, format="PNG", optimize=True)
                    ext = "png"
                else:
                    image.convert("RGB").save(out, format="JPEG", quality=80)
                    ext = "jpg"
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning, OSError,
            ValueError, SyntaxError) as exc:
        raise InvalidParams("not a valid image", {"file": [f"The image cannot be decoded ({type(exc).__name__})."]}) from None
    return ImageInfo(width=width, height=height, thumbnail=out.getvalue(), thumbnail_ext=ext)


def storage_names(attachment_id: int, content_type: str, created: Any) -> tuple[str, str]:
    """(file name, thumbnail stem) inside the storage: by day and id, never the user's name."""
    ext = mimetypes.guess_extension(content_type) or ""
    if content_type == "image/jpeg":
        ext = ".jpg"
    prefix = f"{created:%Y/%m/%d}/{attachment_id}"
    return f"{prefix}{ext}", f"{prefix}_thumb"


def save(name: str, content: IO[bytes] | bytes) -> str:
    data = ContentFile(content) if isinstance(content, bytes) else content
    return storage().save(name, data)


def delete_files(*names: str) -> None:
    store = storage()
    for name in names:
        if name:
            store.delete(name)


# --- signed URLs ---------------------------------------------------------------------------

def _signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=_SIGNER_SALT)


def _value(attachment_id: int, variant: str) -> str:
    return f"{attachment_id}.{variant}"


def signed_url(attachment_id: int, variant: str = FILE) -> str:
    """The download URL of one attachment (or its thumbnail), valid for
    ATTACHMENT_URL_TTL_SECONDS. Whoever holds it may fetch: it is only handed to members."""
    value = _value(attachment_id, variant)
    token = _signer().sign(value)[len(value) + 1 :]  # "<timestamp>:<signature>"
    path = "download" if variant == FILE else "thumbnail"
    return f"{settings.ATTACHMENT_URL_BASE}/api/v1/attachments/{attachment_id}/{path}?{urlencode({'sig': token})}"


class LinkRefused(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def check_signature(attachment_id: int, variant: str, token: object) -> None:
    """Raise LinkRefused unless `token` is this attachment's and variant's, unexpired."""
    if not isinstance(token, str) or not token:
        raise LinkRefused("signature missing")
    try:
        _signer().unsign(f"{_value(attachment_id, variant)}:{token}", max_age=settings.ATTACHMENT_URL_TTL_SECONDS)
    except signing.SignatureExpired:
        raise LinkRefused("link expired") from None
    except signing.BadSignature:
        raise LinkRefused("bad signature") from None


def attachment_dict(
    *, attachment_id: int, name: str, size: int, content_type: str, width: int | None, height: int | None,
    has_thumbnail: bool,
) -> dict[str, Any]:
    """The client shape of an attachment (REST, frames), with freshly signed URLs."""
    data: dict[str, Any] = {
        "attachment_id": str(attachment_id),
        "name": name,
        "size": size,
        "content_type": content_type,
        "url": signed_url(attachment_id, FILE),
    }
    if width and height:
        data["width"] = width
        data["height"] = height
    if has_thumbnail:
        data["thumbnail_url"] = signed_url(attachment_id, THUMBNAIL)
    return data


def model_dict(attachment: Any) -> dict[str, Any]:
    """attachment_dict of a messaging.models.Attachment row."""
    return attachment_dict(
        attachment_id=attachment.id,
        name=attachment.name,
        size=attachment.size,
        content_type=attachment.content_type,
        width=attachment.width,
        height=attachment.height,
        has_thumbnail=bool(attachment.thumbnail_name),
    )


def message_type_fits(message_type: str, content_type: str) -> bool:
    """image/audio/video messages carry a file of that family; file carries any."""
    if message_type == "file":
        return True
    if message_type in ("image", "audio", "video"):
        return content_type.startswith(message_type + "/")
    return False


def default_message_type(content_type: str) -> str:
    for family in ("image", "audio", "video"):
        if content_type.startswith(family + "/"):
            return family
    return "file"
