"""The modes a run is started in and the states it and its records end in.

Each is a ``StrEnum`` whose values are the lower-case strings stored in the
state store and printed in ``--json`` output, so a member compares equal to
the string and stored data reads back unchanged.
"""

from __future__ import annotations

from enum import StrEnum


class RunMode(StrEnum):
    """What a run reads: everything, or what changed since the checkpoint."""

    FULL = "full"
    INCREMENTAL = "incremental"


class WriteMode(StrEnum):
    """What a run does with the stage changes it plans.

    Job files keep their two keys; :meth:`from_flags` maps them:

    ============== ============ ==============
    ``write_back`` ``dry_run``  mode
    ============== ============ ==============
    true           false        ``write``
    false          false        ``record_only``
    any            true         ``dry_run``
    ============== ============ ==============
    """

    WRITE = "write"
    """Write the stage fields to the CRM and record every result."""
    RECORD_ONLY = "record_only"
    """Decide and record decisions in the store; write nothing to the CRM."""
    DRY_RUN = "dry_run"
    """Plan and report the writes; write nothing to the CRM and store nothing the next run would rely on."""

    @classmethod
    def from_flags(cls, *, write_back: bool, dry_run: bool) -> WriteMode:
        if dry_run:
            return cls.DRY_RUN
        return cls.WRITE if write_back else cls.RECORD_ONLY

    @property
    def writes(self) -> bool:
        """Stage fields go to the CRM."""
        return self is WriteMode.WRITE

    @property
    def records(self) -> bool:
        """Decisions and read positions are kept in the store (everything but a dry run)."""
        return self is not WriteMode.DRY_RUN


class RunStatus(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"
    """Asked to stop (SIGTERM): the batch in flight was committed; the next run resumes."""
    INTERRUPTED = "interrupted"
    """Ctrl-C in the foreground."""
    ABANDONED = "abandoned"
    """Found ``running`` by a later run that took over the lease: its process died."""


class Resolution(StrEnum):
    """How a dead letter was closed."""

    WRITTEN = "written"
    """A later write of the record landed."""
    UNCHANGED = "unchanged"
    """A later write found the value already in the CRM."""
    NOT_NEEDED = "not needed any more"
    """The record no longer needs a write (it now shows a value crmsync must not overwrite, say)."""
