"""Set-based chunk writers. Each writes one chunk of clean rows inside the caller's transaction
and returns what happened to them. A per-job table of the keys already written lets a chunk tell
a row repeated from an earlier chunk (a duplicate inside the file) from a new one, and survives
a worker crash along with the committed chunks, so a resumed job counts nothing twice.

PostgreSQL: COPY into a temporary staging table, then one statement that records the keys, upserts
the subscribers (only rows whose values change are rewritten) and suppresses unsubscribed and
bounced addresses. SQLite (the embedded default): the same rules in batched statements."""

from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.utils import timezone

from imports.rows import CleanRow
from subscribers.models import SUPPRESSING_STATUSES, Subscriber, Suppression

SUBSCRIBERS = Subscriber._meta.db_table
SUPPRESSIONS = Suppression._meta.db_table
_SUPPRESSING_VALUES = sorted(str(status.value) for status in SUPPRESSING_STATUSES)
_COPY_PIECE = 128 * 1024
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_SUPPRESSING = "(" + ", ".join(f"'{value}'" for value in _SUPPRESSING_VALUES) + ")"  # an SQL list


@dataclass
class ChunkCounts:
    duplicates: int = 0  # keys already written by an earlier chunk of this job
    created: int = 0
    updated: int = 0
    unchanged: int = 0


def seen_table(job_id) -> str:
    return f"import_seen_{job_id.hex}"


class ChunkWriter:
    def __init__(self, *, job_id, list_id: int, owner_id: int, update_existing: bool):
        self.job_id = job_id
        self.list_id = list_id
        self.owner_id = owner_id
        self.update_existing = update_existing
        self.seen = seen_table(job_id)

    def prepare(self) -> None:
        raise NotImplementedError

    # How a chunk's clean rows wait for the writer: as they are, unless a writer packs them.
    pack_row = None
    pack = None

    def write(self, rows, count: int) -> ChunkCounts:
        """Write `count` rows (a list of CleanRows, or what pack() made of them)."""
        raise NotImplementedError

    def drop(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE IF EXISTS {self.seen}")


def writer_for(**kwargs) -> ChunkWriter:
    return PostgresChunkWriter(**kwargs) if connection.vendor == "postgresql" else SqliteChunkWriter(**kwargs)


# The values an existing subscriber takes from a re-imported row: blanks never erase, fields
# merge (a file with fewer columns keeps the others), and an unsubscribed or bounced
# subscriber stays so whatever the file says.
def _merge_sql(*, merge_json: str, status_given: bool) -> dict[str, str]:
    status = (
        f"CASE WHEN s.status IN {_SUPPRESSING} THEN s.status ELSE excluded.status END" if status_given else "s.status"
    )
    return {
        "email": "CASE WHEN excluded.email <> '' THEN excluded.email ELSE s.email END",
        "phone": "CASE WHEN excluded.phone <> '' THEN excluded.phone ELSE s.phone END",
        "name": "CASE WHEN excluded.name <> '' THEN excluded.name ELSE s.name END",
        "status": status,
        "standard_fields": merge_json.format(old="s.standard_fields", new="excluded.standard_fields"),
        "custom_fields": merge_json.format(old="s.custom_fields", new="excluded.custom_fields"),
    }


def _on_conflict(*, update_existing: bool, merge_json: str, distinct: str, status_given: bool) -> str:
    if not update_existing:
        return "ON CONFLICT (list_id, key) DO NOTHING"
    merged = _merge_sql(merge_json=merge_json, status_given=status_given)
    assignments = ", ".join(f"{column} = {expr}" for column, expr in merged.items())
    changed = " OR ".join(f"s.{column} {distinct} {expr}" for column, expr in merged.items())
    return (
        f"ON CONFLICT (list_id, key) DO UPDATE SET {assignments}, "
        f"import_job_id = excluded.import_job_id, updated_at = excluded.updated_at WHERE {changed}"
    )


class PostgresChunkWriter(ChunkWriter):
    STAGE = "import_stage"

    def prepare(self) -> None:
        with connection.cursor() as cursor:
            # Unlogged: no WAL for a table that only this job reads. It survives a worker crash
            # (resuming counts nothing twice); a crash of PostgreSQL itself empties it, and a
            # job resumed after one counts a key repeated across that point as an update.
            cursor.execute(f"CREATE UNLOGGED TABLE IF NOT EXISTS {self.seen} (key text PRIMARY KEY)")
            cursor.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {self.STAGE} (key text, email text, phone text, name text, "
                "status text, std jsonb, cst jsonb) ON COMMIT DELETE ROWS"
            )

    @staticmethod
    def pack_row(row: CleanRow) -> str:
        """The row as a line of COPY's text format: one string instead of a tuple of seven."""
        line = "\t".join(row)
        if "\\" in line or "\n" in line or "\r" in line or line.count("\t") != 6:
            line = "\t".join(field.translate(_COPY_ESCAPES) for field in row)
        return line + "\n"

    @staticmethod
    def pack(lines: list[str]) -> str:
        return "".join(lines)

    def write(self, rows, count: int) -> ChunkCounts:
        if not count:
            return ChunkCounts()
        with connection.cursor() as cursor:
            with cursor.cursor.copy(
                f"COPY {self.STAGE} (key, email, phone, name, status, std, cst) FROM STDIN"
            ) as copy:
                if isinstance(rows, str):
                    for start in range(0, len(rows), _COPY_PIECE):  # no second copy of the chunk as bytes
                        copy.write(rows[start : start + _COPY_PIECE])
                else:
                    for row in rows:
                        copy.write_row(row)
            cursor.execute(self._statement(), {"list": self.list_id, "job": self.job_id, "owner": self.owner_id})
            fresh, created, updated = cursor.fetchone()
        return ChunkCounts(
            duplicates=count - fresh, created=created, updated=updated, unchanged=fresh - created - updated
        )

    def _upsert(self, name: str, status_filter: str, status_given: bool) -> str:
        conflict = _on_conflict(
            update_existing=self.update_existing,
            merge_json="{old} || {new}",
            distinct="IS DISTINCT FROM",
            status_given=status_given,
        )
        return f"""{name} AS (
            INSERT INTO {SUBSCRIBERS} AS s (list_id, key, email, phone, name, status, standard_fields,
                custom_fields, import_job_id, created_at, updated_at)
            SELECT %(list)s, st.key, st.email, st.phone, st.name, COALESCE(NULLIF(st.status, ''), 'active'),
                st.std, st.cst, %(job)s, now(), now()
            FROM {self.STAGE} st JOIN fresh USING (key)
            WHERE {status_filter} AND NOT EXISTS (
                SELECT FROM {SUBSCRIBERS} s WHERE s.list_id = %(list)s AND s.key = st.key{self._unchanged(status_given)}
            )
            ORDER BY st.key  -- in the unique index's order: its pages are visited once each, in turn
            {conflict}
            RETURNING (xmax = 0) AS inserted
        )"""

    def _unchanged(self, status_given: bool) -> str:
        """What makes an existing subscriber one the row leaves as it is. Such rows are left out
        of the upsert rather than sent to its ON CONFLICT ... WHERE: that would lock (and so
        write) every one of them, which made re-importing an unchanged file cost nearly as much
        as importing it. They are counted as unchanged all the same (fresh - created - updated)."""
        if not self.update_existing:
            return ""  # an existing subscriber is never touched
        merged = _merge_sql(merge_json="{old} || {new}", status_given=status_given)
        incoming = {"excluded.status": "COALESCE(NULLIF(st.status, ''), 'active')",
                    "excluded.standard_fields": "st.std", "excluded.custom_fields": "st.cst",
                    "excluded.email": "st.email", "excluded.phone": "st.phone", "excluded.name": "st.name"}
        conditions = []
        for column, expr in merged.items():
            for written, staged in incoming.items():
                expr = expr.replace(written, staged)
            conditions.append(f"s.{column} IS NOT DISTINCT FROM {expr}")
        return " AND " + " AND ".join(conditions)

    def _statement(self) -> str:
        return f"""
        WITH fresh AS (
            INSERT INTO {self.seen} (key) SELECT key FROM {self.STAGE} ON CONFLICT DO NOTHING RETURNING key
        ),
        {self._upsert("given", "st.status <> ''", status_given=True)},
        {self._upsert("blank", "st.status = ''", status_given=False)},
        suppressed AS (
            INSERT INTO {SUPPRESSIONS} (owner_id, channel, address, reason, created_at)
            SELECT %(owner)s, c.channel, c.address, st.status, now()
            FROM {self.STAGE} st JOIN fresh USING (key)
            CROSS JOIN LATERAL (VALUES ('email', st.email), ('sms', st.phone)) AS c (channel, address)
            WHERE st.status IN {_SUPPRESSING} AND c.address <> ''
            ON CONFLICT DO NOTHING
        )
        SELECT (SELECT count(*) FROM fresh),
               count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted)
        FROM (SELECT inserted FROM given UNION ALL SELECT inserted FROM blank) AS written
        """


class SqliteChunkWriter(ChunkWriter):
    """The embedded default: no COPY and no way to tell an insert from an update in RETURNING,
    so existing keys are looked up first, in batches; the rules are the same as PostgreSQL's."""

    BATCH = 500

    def prepare(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TABLE IF NOT EXISTS {self.seen} (key TEXT PRIMARY KEY)")

    def _existing(self, cursor, table: str, keys: list[str], where: str = "", params: tuple = ()) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(keys), self.BATCH):
            batch = keys[start : start + self.BATCH]
            marks = ",".join("%s" for _ in batch)
            cursor.execute(f"SELECT key FROM {table} WHERE {where} key IN ({marks})", [*params, *batch])
            found.update(row[0] for row in cursor.fetchall())
        return found

    def write(self, rows: list[CleanRow], count: int) -> ChunkCounts:
        if not rows:
            return ChunkCounts()
        now: datetime = timezone.now()
        with connection.cursor() as cursor:
            already = self._existing(cursor, self.seen, [r.key for r in rows])
            fresh = [r for r in rows if r.key not in already]
            cursor.executemany(f"INSERT INTO {self.seen} (key) VALUES (%s)", [(r.key,) for r in fresh])
            existing = self._existing(
                cursor, SUBSCRIBERS, [r.key for r in fresh], where="list_id = %s AND", params=(self.list_id,)
            )
            before = connection.connection.total_changes
            for status_given in (True, False):
                batch = [r for r in fresh if bool(r.status) == status_given]
                if not batch:
                    continue
                conflict = _on_conflict(
                    update_existing=self.update_existing,
                    merge_json="json_patch({old}, {new})",
                    distinct="IS NOT",
                    status_given=status_given,
                )
                cursor.executemany(
                    f"INSERT INTO {SUBSCRIBERS} AS s (list_id, key, email, phone, name, status, standard_fields, "
                    f"custom_fields, import_job_id, created_at, updated_at) "
                    f"VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) {conflict}",
                    [
                        (self.list_id, r.key, r.email, r.phone, r.name, r.status or "active", r.standard_json,
                         r.custom_json, self.job_id.hex, now, now)
                        for r in batch
                    ],
                )
            written = connection.connection.total_changes - before
            suppress = [
                (self.owner_id, channel, address, r.status, now)
                for r in fresh
                if r.status in _SUPPRESSING_VALUES
                for channel, address in (("email", r.email), ("sms", r.phone))
                if address
            ]
            cursor.executemany(
                f"INSERT INTO {SUPPRESSIONS} (owner_id, channel, address, reason, created_at) "
                "VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                suppress,
            )
        created = len(fresh) - len(existing)
        updated = written - created
        return ChunkCounts(
            duplicates=len(rows) - len(fresh), created=created, updated=updated, unchanged=len(existing) - updated
        )
