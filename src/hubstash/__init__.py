"""hubstash: keep Hugging Face Hub repos in your own store, restore them exactly.

The library API, for scripts and ``conftest.py`` files::

    from hubstash import open_store, pull

    result = pull(open_store("/mnt/models-store"), repos=["acme/tiny-model"])
    assert result.exit_code == 0

Every operation returns a small frozen result object; problems with single files are
listed in ``result.findings`` and summed up by ``result.exit_code``; conditions that
stop the whole operation raise a :class:`HubstashError` subclass.
"""

from hubstash.adding import AddResult, add
from hubstash.errors import (
    AccessDenied,
    ExitCode,
    HubstashError,
    IntegrityError,
    LocalFilesystemError,
    NotFound,
    StoreFormatError,
    StoreUnreachable,
    UnsafeStoreContent,
    UsageError,
)
from hubstash.findings import Finding, Severity
from hubstash.inventory import StoredRepo, StoredRevision, list_store
from hubstash.locking import LockResult, lock
from hubstash.pull import PullResult, pull, pull_locked
from hubstash.push import PushResult, push
from hubstash.stores import S3Options, Store, open_store
from hubstash.verify import VerifyResult, verify, verify_locked

__version__ = "0.1.0"

__all__ = [
    "AccessDenied",
    "AddResult",
    "ExitCode",
    "Finding",
    "HubstashError",
    "IntegrityError",
    "LocalFilesystemError",
    "LockResult",
    "NotFound",
    "PullResult",
    "PushResult",
    "S3Options",
    "Severity",
    "Store",
    "StoreFormatError",
    "StoreUnreachable",
    "StoredRepo",
    "StoredRevision",
    "UnsafeStoreContent",
    "UsageError",
    "VerifyResult",
    "add",
    "list_store",
    "lock",
    "open_store",
    "pull",
    "pull_locked",
    "push",
    "verify",
    "verify_locked",
]
