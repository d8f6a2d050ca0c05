"""Live progress over WebSockets: /ws/jobs/<id>/ pushes a job's progress to the browser.

The job rows in PostgreSQL are the source of truth (any worker on any machine commits them), so
the consumer reads its job once a second and sends a message whenever what it reports changed;
no channel layer or broker is needed, and a change reaches the browser within about a second of
its commit. The connection is authenticated (session) and owner-scoped like the REST tracker."""

import asyncio
import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from inboxerr.errors import NotFound
from inboxerr.tracker import FINISHED_STATUSES, task_get

# WebSocket close codes (4000-4999 are the application's): what a 401/403/404 would have said, and
# 4429 for an address over its allowance of failed authentications (inboxerr.ws_auth).
CLOSE_UNAUTHENTICATED, CLOSE_FORBIDDEN, CLOSE_NOT_FOUND, CLOSE_THROTTLED = 4401, 4403, 4404, 4429


class JobProgressConsumer(AsyncJsonWebsocketConsumer):
    @classmethod
    async def encode_json(cls, content: dict) -> str:
        return json.dumps(content, cls=DjangoJSONEncoder)  # dates and UUIDs as the REST API writes them

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.job_id = self.scope["url_route"]["kwargs"]["job_id"]
        try:
            task = await database_sync_to_async(task_get)(user=user, task_id=self.job_id)
        except NotFound:
            await self.close(code=CLOSE_NOT_FOUND)
            return
        if not await database_sync_to_async(user.has_perm)(task.permission):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        await self.accept()
        self.poller = asyncio.create_task(self._follow(user))

    async def disconnect(self, code: int) -> None:
        poller = getattr(self, "poller", None)
        if poller is not None:
            poller.cancel()

    async def _follow(self, user) -> None:
        last = None
        while True:
            task = await database_sync_to_async(task_get)(user=user, task_id=self.job_id)
            report = {"kind": task.kind, **task.data}
            snapshot = {k: v for k, v in report.items() if k not in ("updated_at",)}
            if snapshot != last:
                await self.send_json(report)
                last = snapshot
            if report.get("status") in FINISHED_STATUSES:
                await self.close()
                return
            await asyncio.sleep(settings.PROGRESS_POLL_SECONDS)
