# upy-ok-file: the gateway runs on the host only (CPython: sqlite3, paho-mqtt, processes)
"""The gateway's SQLite store: readings and the RD's registrations.

    store = Store("gateway.db")          # made if missing
    store.add(time.time(), "node-1", "sensors/temp", '[{"bn":...}]')  # d=sector
    store.flush()                        # or let maybe_flush() batch them
    store.close()

Tables:
    readings(id INTEGER PRIMARY KEY, t REAL, ep TEXT, path TEXT, senml TEXT,
             d TEXT)
        one row per reading (a notification or a poll), t in seconds since
        1970, senml the SenML JSON pack, d the endpoint's sector (NULL for
        none: the same ep in two sectors is two endpoints, RFC 9176 §5);
        indexed by (ep, path, t). A file made before d was kept gets the
        column when opened (its rows' d NULL).
    registrations(id TEXT PRIMARY KEY, ep, d, base, base_explicit, lt,
        expires REAL, links TEXT, attrs TEXT, source TEXT)
        the RD's table, so a restarted gateway knows who is registered.

Readings are written in batches (one transaction per flush), in WAL mode:
a reading reaches the disk within flush_s or batch rows. Rows waiting for
their batch are bounded by max_pending; beyond it the oldest are dropped
and counted (`dropped`), never silently.

Why batches of up to 5,000 rows: most of a row's cost is its entry in the
(ep, path, t) index, and a transaction writes every index page it touched
to the WAL whole. Readings of a thousand resources land on about a
thousand pages, however few rows the transaction holds: 200,000 rows of
1,000 resources cost about 8.5 µs a row in transactions of 1,000, 5.5 in
4,000 and 4.5 in 16,000 (CPU; 2 µs without the index). So under load a
batch is as large as flush_s lets it grow; flush_s still bounds how long
a reading waits.

A failed write never ends the gateway's loop: the rows are kept (within
max_pending) and written again after retry_s, the failure counted in
`errors` and told in `last_error`. SQLite waits at most busy_timeout_s for
a lock another process holds (a backup tool, an sqlite3 shell): the loop
that waits serves every node, so it waits briefly and tries again later.

One gateway per file: the store holds an exclusive lock (flock) on
FILE.lock while it is open, and a second store on the same file is refused
with StoreError, instead of two gateways observing every node and storing
every reading twice.
"""
import json
import sqlite3
import time


class StoreError(Exception):
    """The store cannot be opened: another gateway holds its file, the file
    is no SQLite database, its directory is missing or not writable."""

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS readings (id INTEGER PRIMARY KEY, t REAL NOT NULL, "
    "ep TEXT NOT NULL, path TEXT NOT NULL, senml TEXT NOT NULL, d TEXT)",
    "CREATE INDEX IF NOT EXISTS readings_by_resource ON readings (ep, path, t)",
    "CREATE TABLE IF NOT EXISTS registrations (id TEXT PRIMARY KEY, ep TEXT NOT NULL, "
    "d TEXT, base TEXT NOT NULL, base_explicit INTEGER NOT NULL, lt INTEGER NOT NULL, "
    "expires REAL NOT NULL, links TEXT NOT NULL, attrs TEXT NOT NULL, source TEXT)",
)


class Store:
    """Readings and registrations in the SQLite file `path` (':memory:'
    for none kept). batch / flush_s: write when this many rows wait or
    this long has passed since the first of them."""

    def __init__(self, path, batch=5000, flush_s=0.25, max_pending=200000,
                 busy_timeout_s=0.05, retry_s=1.0):
        self.path = path
        self.batch = batch
        self.flush_s = flush_s
        self.max_pending = max_pending
        self.retry_s = retry_s
        self._lock = None
        if path != ":memory:" and not path.startswith("file:"):
            self._lock = _lock(path + ".lock")
        try:
            # (check_same_thread off: a store may be made in one thread and
            # used by the loop in another, one thread at a time.)
            self.db = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout_s,
                                      check_same_thread=False)
            try:
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                for stmt in _SCHEMA:
                    self.db.execute(stmt)
                if "d" not in [row[1] for row in self.db.execute("PRAGMA table_info(readings)")]:
                    # an older gateway's file
                    self.db.execute("ALTER TABLE readings ADD COLUMN d TEXT")
            except BaseException:
                self.db.close()
                raise
        except sqlite3.Error as e:
            self._unlock()
            raise StoreError(str(e)) from e
        except BaseException:
            self._unlock()
            raise
        self._rows = []
        self._since = None  # monotonic time of the oldest waiting row
        self._retry_at = None  # monotonic time of the next try after a failed write
        self.stored = 0  # rows written
        self.dropped = 0  # rows dropped: max_pending exceeded, or unwritten at close
        self.errors = 0  # failed writes (readings or registrations)
        self.last_error = None  # the last failure's text

    # -- readings -----------------------------------------------------------

    def add(self, t, ep, path, senml, d=None):
        rows = self._rows
        if not rows:
            self._since = time.monotonic()
        elif len(rows) >= self.max_pending:
            del rows[0]
            self.dropped += 1
        rows.append((t, ep, path, senml, d))

    @property
    def pending(self):
        return len(self._rows)

    def due(self, now=None):
        """Seconds until the waiting rows must be written (0: now; None:
        nothing waits)."""
        if not self._rows:
            return None
        now = now or time.monotonic()
        if self._retry_at is not None and now < self._retry_at:
            return self._retry_at - now  # a write failed: not again before retry_s
        if len(self._rows) >= self.batch:
            return 0.0
        left = self.flush_s - (now - self._since)
        return left if left > 0 else 0.0

    def maybe_flush(self, now=None):
        d = self.due(now)
        if d is not None and d <= 0:
            self.flush()

    def flush(self):
        """Write every waiting row in one transaction. On failure the rows
        wait for the next try (retry_s later); False then."""
        rows = self._rows
        if not rows:
            return True
        self._rows = []
        self._since = None
        try:
            with self.db:
                self.db.execute("BEGIN")
                self.db.executemany(
                    "INSERT INTO readings (t, ep, path, senml, d) VALUES (?, ?, ?, ?, ?)", rows)
            self.stored += len(rows)
            self._retry_at = None
            return True
        except sqlite3.Error as e:
            self._failed(e)
            # Kept for the next try (a lock is let go, space is freed);
            # what arrived meanwhile goes after them, max_pending in all.
            rows.extend(self._rows)
            over = len(rows) - self.max_pending
            if over > 0:
                del rows[:over]
                self.dropped += over
            self._rows = rows
            self._since = time.monotonic()
            self._retry_at = self._since + self.retry_s
            return False

    def _failed(self, e):
        self.errors += 1
        self.last_error = str(e) or type(e).__name__

    def count(self):
        return self.db.execute("SELECT COUNT(*) FROM readings").fetchone()[0]

    def readings(self, ep=None, path=None, limit=None, d=None):
        """[(t, ep, path, senml)], oldest first (for tools and tests); `d`:
        of that sector only."""
        sql = "SELECT t, ep, path, senml FROM readings"
        cond, args = [], []
        if ep is not None:
            cond.append("ep = ?")
            args.append(ep)
        if d is not None:
            cond.append("d = ?")
            args.append(d)
        if path is not None:
            cond.append("path = ?")
            args.append(path)
        if cond:
            sql += " WHERE " + " AND ".join(cond)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT %d" % int(limit)
        return self.db.execute(sql, args).fetchall()

    # -- registrations ---------------------------------------------------------

    def save_registration(self, reg, expires):
        """Keep rd_server.Registration `reg`, alive until `expires` (s since 1970)."""
        source = None
        if isinstance(reg.source, tuple):
            source = json.dumps(list(reg.source[:2]))
        self.db.execute(
            "INSERT OR REPLACE INTO registrations (id, ep, d, base, base_explicit, lt, "
            "expires, links, attrs, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (reg.id, reg.ep, reg.d, reg.base, 1 if reg.base_explicit else 0, reg.lt_s,
             expires, reg.links_text(), json.dumps(reg.attrs), source))

    def delete_registration(self, rid):
        self.db.execute("DELETE FROM registrations WHERE id = ?", (rid,))

    def save_registrations(self, changes):
        """Apply {id: (Registration, expires) or None to delete} in one
        transaction. True when written; on an SQLite error nothing is,
        the error is counted and kept in last_error, and False returned
        (the caller keeps the changes for a later try)."""
        try:
            with self.db:
                self.db.execute("BEGIN")
                for rid, change in changes.items():
                    if change is None:
                        self.delete_registration(rid)
                    else:
                        self.save_registration(change[0], change[1])
            return True
        except sqlite3.Error as e:
            self._failed(e)
            return False

    def registrations(self):
        """[dict] of the saved registrations (attrs as (name, value) pairs,
        source as a (host, port) tuple or None)."""
        out = []
        for row in self.db.execute(
                "SELECT id, ep, d, base, base_explicit, lt, expires, links, attrs, source "
                "FROM registrations ORDER BY rowid"):
            attrs = [tuple(a) for a in json.loads(row[8])]
            source = tuple(json.loads(row[9])) if row[9] else None
            out.append({"id": row[0], "ep": row[1], "d": row[2], "base": row[3],
                        "base_explicit": bool(row[4]), "lt": row[5], "expires": row[6],
                        "links": row[7], "attrs": attrs, "source": source})
        return out

    def close(self):
        """Write what waits (what cannot be written is counted in dropped),
        close the file and let go of its lock."""
        self._retry_at = None
        if not self.flush():
            self.dropped += len(self._rows)
            self._rows = []
        self.db.close()
        self._unlock()

    def _unlock(self):
        if self._lock is not None:
            self._lock.close()  # closing the file lets go of its flock
            self._lock = None


def _lock(path):
    # An exclusive, non-blocking flock on `path` (made if missing), held
    # while the returned file is open. An OS lock, not a row in the
    # database: it goes with the process, so a gateway that was killed
    # leaves no stale lock behind.
    import fcntl

    try:
        f = open(path, "a")
    except OSError as e:
        raise StoreError("cannot make its lock file %s: %s" % (path, e.strerror or e)) from e
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        f.close()
        raise StoreError("in use by another gateway (a process holds the lock on %s)"
                         % path) from e
    return f
