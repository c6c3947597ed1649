"""Audit events: ECS-style JSON documents, one per command, decision, click, call and outcome.

Sinks: JSON lines (stdout or a file), an Elasticsearch index or data stream, and a one-line
summary per mutating action in a Slack channel. The remote sinks sit behind a `SpooledSink`:
an event is appended to a local spool file first and delivered from there with backoff, so a
failing sink neither blocks the bot nor loses the event, and the spool survives a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import random
import sys
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Protocol, TextIO, runtime_checkable

from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch

from bot.app.ports import PermanentDeliveryError as PermanentDeliveryError
from bot.app.ports import PostLine as PostLine
from bot.core.audit import CHANNEL_SUMMARY_ACTIONS as CHANNEL_SUMMARY_ACTIONS
from bot.core.audit import MUTATING_ACTIONS as MUTATING_ACTIONS
from bot.core.audit import AuditEvent as AuditEvent
from bot.core.config import AuditConfig

log = logging.getLogger(__name__)


class AuditSink(Protocol):
    """Somewhere audit documents go."""

    async def write(self, doc: dict[str, Any]) -> None:
        """Persist one document."""


@runtime_checkable
class Lifecycle(Protocol):
    """A sink with background work to start and stop."""

    async def start(self) -> None:
        """Begin background work (idempotent)."""

    async def close(self) -> None:
        """Finish what can be finished quickly and stop."""


class JsonLinesSink:
    """JSON lines to a file (appended) or to stdout."""

    def __init__(self, path: str | Path | None = None, stream: TextIO | None = None) -> None:
        self._path = Path(path) if path else None
        self._stream = stream
        self._lock = asyncio.Lock()

    async def write(self, doc: dict[str, Any]) -> None:
        """Append one line."""
        line = json.dumps(doc, ensure_ascii=False, default=str) + "\n"
        async with self._lock:
            if self._path is not None:
                await asyncio.to_thread(self._append, line)
            else:
                out = self._stream or sys.stdout
                out.write(line)
                out.flush()

    def _append(self, line: str) -> None:
        assert self._path is not None
        with self._path.open("a", encoding="utf-8") as fh:
            fh.write(line)


class MemorySink:
    """Keeps documents in memory (the local shell and tests read them back)."""

    def __init__(self) -> None:
        self.docs: list[dict[str, Any]] = []

    async def write(self, doc: dict[str, Any]) -> None:
        """Keep the document."""
        self.docs.append(doc)


# ---- delivery through a spool ------------------------------------------------------------


class Delivery(StrEnum):
    """What became of one document handed to a `Deliverer`."""

    OK = "ok"  # stored (or already stored earlier: a replay)
    RETRY = "retry"  # try again later
    REJECT = "reject"  # will never be accepted: kept in the spool's rejected file


class Deliverer(Protocol):
    """A remote destination that takes a batch and says what became of each document."""

    name: str

    async def deliver(self, docs: Sequence[dict[str, Any]]) -> list[tuple[Delivery, str]]:
        """One (Delivery, reason) per document, in order."""


class Spool:
    """A JSON-lines file of documents not yet delivered, owned by one process at a time.

    Several processes may share the spool directory: each takes the first free slot
    (an flock on `<name>.<slot>.lock`) and adopts the files of slots nobody holds, so the
    events of a replica that died are delivered by whichever replica starts next.
    """

    def __init__(self, directory: str | Path, name: str) -> None:
        self.directory = Path(directory)
        self.name = name
        self.path: Path | None = None
        self.pending: list[dict[str, Any]] = []
        self._lock_file: IO[bytes] | None = None

    def open(self) -> None:
        """Take a slot and load what earlier processes left (this slot's and orphaned ones)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        slot = 0
        while self._lock_file is None:
            handle = self._try_lock(slot)
            if handle is not None:
                self._lock_file = handle
                self.path = self.directory / f"{self.name}.{slot}.jsonl"
            slot += 1
        self.pending = _read_lines(self.path) if self.path and self.path.exists() else []
        adopted = self._adopt_orphans()
        if adopted:
            self.pending.extend(adopted)
            self._rewrite()

    def _try_lock(self, slot: int) -> IO[bytes] | None:
        handle = (self.directory / f"{self.name}.{slot}.lock").open("ab")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        return handle

    def _adopt_orphans(self) -> list[dict[str, Any]]:
        adopted: list[dict[str, Any]] = []
        for other in sorted(self.directory.glob(f"{self.name}.*.jsonl")):
            if other == self.path:
                continue
            slot = other.name.removeprefix(f"{self.name}.").removesuffix(".jsonl")
            if not slot.isdigit():
                continue
            handle = self._try_lock(int(slot))
            if handle is None:
                continue  # a live process owns it
            try:
                adopted.extend(_read_lines(other))
                other.unlink()
            finally:
                handle.close()
        return adopted

    def append(self, doc: dict[str, Any]) -> None:
        """Add a document durably (fsync) before anyone tries to deliver it."""
        assert self.path is not None, "open() the spool first"
        self.pending.append(doc)
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(doc, ensure_ascii=False, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def drop_head(self, count: int, rejected: Sequence[tuple[dict[str, Any], str]]) -> None:
        """Forget the first `count` documents (delivered or rejected); keep rejects aside."""
        if rejected:
            assert self.path is not None
            with self.path.with_suffix(".rejected.jsonl").open("a", encoding="utf-8") as fh:
                for doc, reason in rejected:
                    fh.write(json.dumps({"reason": reason, "doc": doc}, default=str) + "\n")
        del self.pending[:count]
        self._rewrite()

    def _rewrite(self) -> None:
        assert self.path is not None
        tmp = self.path.with_suffix(".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            for doc in self.pending:
                fh.write(json.dumps(doc, ensure_ascii=False, default=str) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)  # atomic: a crash leaves the old or the new file whole

    def close(self) -> None:
        """Release the slot (the file stays for the next process)."""
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def _read_lines(path: Path) -> list[dict[str, Any]]:
    docs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            docs.append(json.loads(line))
        except ValueError:  # a line torn by a crash mid-append: nothing to deliver
            log.warning("audit spool %s: skipped a torn line", path)
    return docs


class SpooledSink:
    """Writes go to the spool at once; a background task delivers them with backoff."""

    def __init__(
        self,
        deliverer: Deliverer,
        spool: Spool,
        *,
        batch: int = 500,
        first_delay: float = 1.0,
        max_delay: float = 60.0,
        close_timeout: float = 5.0,
    ) -> None:
        self.deliverer = deliverer
        self.spool = spool
        self.batch = batch
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.close_timeout = close_timeout
        self.failures = 0  # consecutive failed rounds (for tests and logs)
        self._opened = False
        self._mutex = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        """Documents waiting in the spool."""
        return len(self.spool.pending)

    async def start(self) -> None:
        """Open the spool (replaying what is left in it) and start delivering."""
        async with self._mutex:
            if not self._opened:
                await asyncio.to_thread(self.spool.open)
                self._opened = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        if self.spool.pending:
            self._wake.set()

    async def write(self, doc: dict[str, Any]) -> None:
        """Spool the document and wake the deliverer; never waits on the remote side."""
        await self.start()
        async with self._mutex:
            await asyncio.to_thread(self.spool.append, doc)
        self._wake.set()

    async def _run(self) -> None:
        delay = 0.0
        while True:
            if not self.spool.pending:
                self._wake.clear()
                await self._wake.wait()
                continue
            if delay:
                await asyncio.sleep(delay)
            if await self.flush_once():
                delay = 0.0
            else:
                base = min(self.max_delay, max(self.first_delay, delay * 2))
                delay = base * random.uniform(0.8, 1.2)  # replicas do not retry in lockstep

    async def flush_once(self) -> bool:
        """Deliver one batch from the head of the spool; False if anything must be retried."""
        batch = list(self.spool.pending[: self.batch])
        if not batch:
            return True
        try:
            results = await self.deliverer.deliver(batch)
        except Exception as exc:  # a deliverer bug must not kill the loop; keep the events
            log.warning("audit sink %s failed: %s", self.deliverer.name, exc)
            results = [(Delivery.RETRY, str(exc))] * len(batch)
        # Only the leading run of finished documents leaves the spool, so order is kept.
        done = 0
        rejected: list[tuple[dict[str, Any], str]] = []
        for doc, (status, reason) in zip(batch, results, strict=True):
            if status is Delivery.RETRY:
                break
            if status is Delivery.REJECT:
                log.error("audit sink %s rejected an event: %s", self.deliverer.name, reason)
                rejected.append((doc, reason))
            done += 1
        if done:
            async with self._mutex:
                await asyncio.to_thread(self.spool.drop_head, done, rejected)
        if done < len(batch):
            self.failures += 1
            if self.failures == 1 or self.failures % 10 == 0:
                reason = results[done][1]
                log.warning(
                    "audit sink %s unavailable (%s); %d event(s) wait in %s",
                    self.deliverer.name,
                    reason,
                    self.pending,
                    self.spool.path,
                )
            return False
        self.failures = 0
        return True

    async def close(self) -> None:
        """One last bounded delivery attempt; what is left stays in the spool file."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._opened and self.spool.pending:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.flush_once(), self.close_timeout)
        self.spool.close()


# ---- Elasticsearch -----------------------------------------------------------------------

AUDIT_MAPPINGS: dict[str, Any] = {
    "dynamic": True,
    "properties": {
        "@timestamp": {"type": "date"},
        "event": {
            "properties": {
                "id": {"type": "keyword"},
                "action": {"type": "keyword"},
                "outcome": {"type": "keyword"},
                "dataset": {"type": "keyword"},
                "duration": {"type": "long"},
                "reason": {"type": "text"},
            }
        },
        "user": {"properties": {"id": {"type": "keyword"}, "name": {"type": "keyword"}}},
        "ml_chatops": {
            "properties": {
                "action_id": {"type": "keyword"},
                "cluster": {"type": "keyword"},
                "deployment_ids": {"type": "keyword"},
            }
        },
    },
}
_RETRY_STATUSES = {408, 429, 500, 502, 503, 504}


class ElasticsearchDeliverer:
    """`_bulk` `create` with the event id as `_id`: a replayed event is a harmless 409."""

    def __init__(self, client: AsyncElasticsearch, index: str, *, data_stream: bool) -> None:
        self.name = f"elasticsearch:{index}"
        self.client = client
        self.index = index
        self.data_stream = data_stream
        self._ensured = False

    async def ensure_target(self) -> None:
        """Create the index (with mappings) or data stream (with its template) if missing."""
        if await self.client.indices.exists(index=self.index):
            self._ensured = True
            return
        try:
            if self.data_stream:
                await self.client.indices.put_index_template(
                    name=f"{self.index}-ml-chatops",
                    index_patterns=[self.index],
                    data_stream={},
                    priority=500,
                    template={"mappings": AUDIT_MAPPINGS},
                )
                await self.client.indices.create_data_stream(name=self.index)
            else:
                await self.client.indices.create(index=self.index, mappings=AUDIT_MAPPINGS)
        except ApiError as exc:
            if _error_type(exc) != "resource_already_exists_exception":  # another replica won
                # No right to create it: the bulk writes below may still auto-create it.
                log.warning("audit target %s not created: %s", self.index, _error_reason(exc))
        self._ensured = True

    async def deliver(self, docs: Sequence[dict[str, Any]]) -> list[tuple[Delivery, str]]:
        """Bulk-create the batch; item errors are sorted into retry and reject."""
        try:
            if not self._ensured:
                await self.ensure_target()
            operations: list[dict[str, Any]] = []
            for doc in docs:
                operations.append({"create": {"_index": self.index, "_id": doc["event"]["id"]}})
                operations.append(doc)
            response = await self.client.bulk(operations=operations)
        except ApiError as exc:
            return [(Delivery.RETRY, f"{exc.meta.status} {_error_reason(exc)}")] * len(docs)
        except TransportError as exc:
            return [(Delivery.RETRY, str(exc.message))] * len(docs)
        results: list[tuple[Delivery, str]] = []
        for item in response["items"]:
            result = item.get("create") or next(iter(item.values()))
            status = int(result.get("status", 500))
            error = result.get("error") or {}
            reason = f"{status} {error.get('type', '')}: {error.get('reason', '')}".strip()
            if status < 300 or status == 409:  # 409: this event was stored by an earlier try
                results.append((Delivery.OK, ""))
            elif status in _RETRY_STATUSES:
                results.append((Delivery.RETRY, reason))
            else:
                results.append((Delivery.REJECT, reason))
        return results


def _error_type(exc: ApiError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("type", ""))
    return ""


def _error_reason(exc: ApiError) -> str:
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return str(body["error"].get("reason") or body["error"].get("type"))
    return str(exc.message)


# ---- the audit channel -------------------------------------------------------------------


def summary_line(doc: dict[str, Any]) -> str:
    """One line for the audit channel: outcome, what, where, who, flags, reason, action id."""
    event, fields = doc.get("event", {}), doc.get("ml_chatops", {})
    mark = {"success": "✅", "failure": "❌"}.get(event.get("outcome"), "❔")
    ids = ", ".join(f"`{d}`" for d in fields.get("deployment_ids") or []) or "—"
    user = doc.get("user", {}).get("id")
    parts = [f"{mark} {event.get('action')} {ids}"]
    if fields.get("cluster"):
        parts.append(f"on `{fields['cluster']}`")
    if user:
        parts.append(f"by <@{user}>")
    line = " ".join(parts)
    if fields.get("flags"):
        line += " (" + " ".join(fields["flags"]) + ")"
    if event.get("outcome") == "failure" and doc.get("error", {}).get("message"):
        line += f": {doc['error']['message']}"
    if event.get("reason"):
        line += f" — reason: {event['reason']}"
    if fields.get("action_id"):
        line += f" · action `{fields['action_id']}`"
    return line.replace("\n", " ")[:3000]


class ChannelDeliverer:
    """Posts `summary_line` of each mutating event to one channel; others pass through."""

    def __init__(self, post: PostLine, channel: str) -> None:
        self.name = f"slack:{channel}"
        self.post = post
        self.channel = channel

    async def deliver(self, docs: Sequence[dict[str, Any]]) -> list[tuple[Delivery, str]]:
        """Post in order; stop at the first retryable failure so the order holds."""
        results: list[tuple[Delivery, str]] = []
        for index, doc in enumerate(docs):
            if doc.get("event", {}).get("action") not in CHANNEL_SUMMARY_ACTIONS:
                results.append((Delivery.OK, ""))
                continue
            try:
                await self.post(self.channel, summary_line(doc))
            except PermanentDeliveryError as exc:
                results.append((Delivery.REJECT, str(exc)))
            except Exception as exc:
                results += [(Delivery.RETRY, str(exc))] * (len(docs) - index)
                break
            else:
                results.append((Delivery.OK, ""))
        return results


def remote_sinks(
    config: AuditConfig, es_client: AsyncElasticsearch | None, post: PostLine | None
) -> list[AuditSink]:
    """The spooled sinks the `audit` config asks for: `index` and `channel`."""
    sinks: list[AuditSink] = []
    if config.index and es_client is not None:
        deliverer = ElasticsearchDeliverer(es_client, config.index, data_stream=config.data_stream)
        sinks.append(SpooledSink(deliverer, Spool(config.spool, "elasticsearch")))
    if config.channel and post is not None:
        sinks.append(
            SpooledSink(ChannelDeliverer(post, config.channel), Spool(config.spool, "slack"))
        )
    return sinks


# ---- the audit file, when it cannot be written ---------------------------------------------

DELAYED_NOTICE = (
    ":warning: The audit trail is delayed: the bot cannot write its audit file ({reason}). "
    "Actions still run; their audit events are kept in the spool and written when the file "
    "can be written again."
)


def _writable_file(path: Path, key: str) -> str | None:
    if path.exists():
        if path.is_dir():
            return f"{key}: {path} is a directory, not a file"
        if not os.access(path, os.W_OK):
            return f"{key}: cannot write {path}: not writable by this user"
        return None
    folder = path.parent
    if not folder.is_dir():
        return f"{key}: cannot write {path}: directory {folder} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{key}: cannot write {path}: directory {folder} is not writable"
    return None


def _writable_dir(path: Path, key: str) -> str | None:
    if path.exists():
        if not path.is_dir():
            return f"{key}: {path} is not a directory"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"{key}: directory {path} is not writable"
        return None
    parent = path.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        return f"{key}: cannot create directory {path} (its parent is missing or not writable)"
    return None


def sink_problems(config: AuditConfig) -> list[str]:
    """Why the configured audit sinks could not be written now (empty: they can).

    Judged without writing anything: `check-config`, `/readyz` and `serve` ask it."""
    problems: list[str] = []
    if config.file:
        problem = _writable_file(Path(config.file), "audit.file")
        if problem:
            problems.append(problem)
    if config.file or config.index or config.channel:  # the file's fallback too
        problem = _writable_dir(Path(config.spool), "audit.spool")
        if problem:
            problems.append(problem)
    return problems


def describe_sinks(config: AuditConfig) -> str:
    """Where audit events go, in one line."""
    parts = [f"events to {config.file}" if config.file else "events to stdout"]
    if config.index:
        parts.append(f"index {config.index} on cluster {config.cluster or 'default'}")
    if config.channel:
        parts.append(f"summaries to channel {config.channel}")
    if config.index or config.channel:
        parts.append(f"spool {config.spool}")
    return ", ".join(parts)


class FallbackFileSink:
    """The audit file, with a spool for while it cannot be written.

    Writes go straight to the file. When one fails (disk full, directory gone, permissions)
    the event goes to the spool (fsynced, in `audit.spool`, kept across restarts), the
    channel the event belongs to is told once that the audit trail is delayed, and a
    background task retries with backoff, writing the backlog in order before anything new.
    An event the spool cannot take either is logged whole at ERROR: it is never dropped
    silently.
    """

    def __init__(
        self,
        path: str | Path,
        spool: Spool,
        *,
        notify: PostLine | None = None,
        first_delay: float = 1.0,
        max_delay: float = 30.0,
    ) -> None:
        self.path = Path(path)
        self.file = JsonLinesSink(self.path)
        self.spool = spool
        self.notify = notify
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.down: str | None = None  # why the file cannot be written, while it cannot
        self._told: set[str] = set()  # channels told during this outage
        self._mutex = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._notices: set[asyncio.Task[None]] = set()

    @property
    def pending(self) -> int:
        """Events waiting in the spool for the file."""
        return len(self.spool.pending)

    async def start(self) -> None:
        """Replay a backlog an earlier run left in the spool."""
        if self.spool.path is None and self.spool.directory.is_dir():
            await asyncio.to_thread(self.spool.open)
        if self.spool.pending:
            self.down = self.down or "a backlog from an earlier run"
            self._retry_soon()

    def health(self) -> str:
        """`ok`, or `failed: why` (for /readyz)."""
        if self.pending:  # the backlog, not the flag: it empties before the flag is cleared
            why = self.down or "not retried yet"
            return f"failed: cannot write {self.path} ({why}); {self.pending} event(s) spooled"
        problem = _writable_file(self.path, "audit.file")
        return f"failed: {problem}" if problem else "ok"

    async def write(self, doc: dict[str, Any]) -> None:
        """Append to the file, or spool (in order) while the file cannot be written."""
        async with self._mutex:
            if not self.spool.pending:
                try:
                    await self.file.write(doc)
                    return
                except OSError as exc:
                    self.down = exc.strerror or str(exc)
                    log.error(
                        "audit file %s cannot be written (%s); events are spooled in %s "
                        "until it can",
                        self.path,
                        self.down,
                        self.spool.directory,
                    )
            await self._spool(doc)
        # In the background: a Slack post never holds back the action being audited.
        notice = asyncio.get_running_loop().create_task(self._tell(doc))
        self._notices.add(notice)
        notice.add_done_callback(self._notices.discard)
        self._retry_soon()

    async def _spool(self, doc: dict[str, Any]) -> None:
        if self.spool.path is None:
            await asyncio.to_thread(self.spool.open)
        await asyncio.to_thread(self.spool.append, doc)

    async def _tell(self, doc: dict[str, Any]) -> None:
        """Tell the event's channel, once per outage, that the audit trail is delayed."""
        channel = ((doc.get("slack") or {}).get("channel") or {}).get("id")
        action = (doc.get("event") or {}).get("action")
        if self.notify is None or not channel or channel in self._told:
            return
        if action not in MUTATING_ACTIONS:
            return
        self._told.add(channel)
        try:
            await self.notify(channel, DELAYED_NOTICE.format(reason=self.down or "unknown"))
        except Exception as exc:  # the notice is best effort; the spool is the guarantee
            log.warning("could not tell %s that the audit trail is delayed: %s", channel, exc)

    def _retry_soon(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._retry())

    async def _retry(self) -> None:
        delay = self.first_delay
        while self.spool.pending:
            await asyncio.sleep(delay)
            if await self.flush_once():
                break
            delay = min(self.max_delay, delay * 2) * random.uniform(0.8, 1.2)

    async def flush_once(self) -> bool:
        """Write the backlog to the file in order; True when it is empty."""
        async with self._mutex:
            written = 0
            try:
                for doc in list(self.spool.pending):
                    await self.file.write(doc)
                    written += 1
            except OSError as exc:
                self.down = exc.strerror or str(exc)
            if written:
                await asyncio.to_thread(self.spool.drop_head, written, [])
            if self.spool.pending:
                return False
            if self.down is not None:
                log.warning("audit file %s writable again; the delayed events are in it", self.path)
            self.down = None
            self._told.clear()
            return True

    async def close(self) -> None:
        """One last try; what is left stays in the spool for the next run."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.spool.pending:
            await self.flush_once()
        self.spool.close()


# ---- the log -----------------------------------------------------------------------------


class AuditLog:
    """Fans each event out to every sink, timestamped by the given clock.

    A sink that raises is logged with the whole event (so the event still reaches the
    process log) and never stops the others or the caller.
    """

    def __init__(self, sinks: list[AuditSink], clock: Callable[[], float]) -> None:
        self.sinks = sinks
        self.clock = clock

    async def start(self) -> None:
        """Start the sinks' background delivery (replays spools left by earlier runs)."""
        for sink in self.sinks:
            if isinstance(sink, Lifecycle):
                await sink.start()

    async def record(self, event: AuditEvent) -> None:
        """Write the event to every sink."""
        doc = event.to_ecs(self.clock())
        for sink in self.sinks:
            try:
                await sink.write(doc)
            except Exception:
                log.exception(
                    "audit sink %s failed; the event: %s",
                    type(sink).__name__,
                    json.dumps(doc, default=str),
                )

    async def close(self) -> None:
        """Flush and stop the sinks that deliver in the background."""
        for sink in self.sinks:
            if isinstance(sink, Lifecycle):
                await sink.close()

    def health(self) -> str:
        """`ok`, or `failed: why` for the first sink that cannot be written (for /readyz)."""
        for sink in self.sinks:
            if isinstance(sink, FallbackFileSink):
                state = sink.health()
                if state != "ok":
                    return state
        return "ok"

    def backlog(self) -> int:
        """Audit events waiting for a sink: remote sinks' spools and the file's."""
        return sum(s.pending for s in self.sinks if isinstance(s, SpooledSink | FallbackFileSink))
