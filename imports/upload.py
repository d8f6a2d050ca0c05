"""A Django upload handler that streams an import file straight into IMPORT_DIR: 64 KiB at a time,
hashing it (SHA-256) and checking its encoding on the way, and stopping at IMPORT_MAX_BYTES. The
request never holds the file in memory, and the job needs no second pass to learn either."""

import codecs
import hashlib
import uuid

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler, SkipFile, StopUpload

from imports.services import StoredFile, import_dir
from inboxerr.middleware import BodyLimit

UPLOAD_FIELD = "file"
# Room for the multipart form around the file (boundaries, the other fields) within a request
# whose file may be IMPORT_MAX_BYTES.
FORM_OVERHEAD_BYTES = 64 * 1024


# The upload routes' limit, checked on the Content-Length before the body is read.
UPLOAD_BODY_LIMIT = BodyLimit("IMPORT_MAX_BYTES", field=UPLOAD_FIELD, overhead=FORM_OVERHEAD_BYTES)


class StoredUpload(UploadedFile):
    """What request.FILES["file"] holds: the stored file, already hashed."""

    def __init__(self, stored: StoredFile):
        super().__init__(file=None, name=stored.filename, size=stored.size)
        self.stored = stored


class ImportUploadHandler(FileUploadHandler):
    chunk_size = 64 * 1024

    def __init__(self, request=None):
        super().__init__(request)
        self.too_large = False
        self._handle = None

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        # Refuse at once when the declared body is already over the limit (plus form overhead).
        if content_length and content_length > settings.IMPORT_MAX_BYTES + FORM_OVERHEAD_BYTES:
            self.too_large = True
        return None

    def new_file(self, field_name, file_name, content_type, content_length, charset=None, content_type_extra=None):
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        if field_name != UPLOAD_FIELD or self.too_large:
            raise SkipFile
        self.path = import_dir() / f"{uuid.uuid4().hex}.upload"
        self._handle = open(self.path, "wb")
        self._digest = hashlib.sha256()
        self._size = 0
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._utf8_ok = True
        self._first = True
        self._bom = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self._size += len(raw_data)
        if self._size > settings.IMPORT_MAX_BYTES:
            self.too_large = True
            self._abort()
            raise StopUpload(connection_reset=False)
        if self._first:
            self._bom = raw_data.startswith(codecs.BOM_UTF8)
            self._first = False
        if self._utf8_ok:
            try:
                self._utf8.decode(raw_data)
            except UnicodeDecodeError:
                self._utf8_ok = False
        self._digest.update(raw_data)
        self._handle.write(raw_data)
        return None

    def file_complete(self, file_size: int) -> StoredUpload | None:
        if self._handle is None:
            return None
        self._handle.close()
        self._handle = None
        if self._utf8_ok:
            try:
                self._utf8.decode(b"", final=True)
            except UnicodeDecodeError:
                self._utf8_ok = False
        encoding = ("utf-8-sig" if self._bom else "utf-8") if self._utf8_ok else "cp1252"
        stored = StoredFile(self.path, self.file_name or "upload.csv", self._digest.hexdigest(), self._size, encoding)
        return StoredUpload(stored)

    def upload_interrupted(self) -> None:
        self._abort()

    def _abort(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            self.path.unlink(missing_ok=True)
