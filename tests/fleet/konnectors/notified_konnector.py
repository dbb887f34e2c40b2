"""A konnector that a provider notifies: ``accept_notification`` stores, a run handles what is stored."""

import hashlib

from framework import Konnector

NOTIFICATIONS = "io.example.notification"


class Notified(Konnector):
    def accept_notification(self, ctx, body):
        notification = hashlib.sha256(body).hexdigest()[:16]
        ctx.store.save(NOTIFICATIONS, [{"_id": notification, "body": body.decode(), "status": "new"}])
        return notification

    def start(self, ctx):
        new = ctx.store.find(NOTIFICATIONS, {"status": "new"}, limit=100)
        ctx.store.save(NOTIFICATIONS, [{**doc, "status": "handled"} for doc in new])
        ctx.log.info(f"handled {len(new)} notification(s)")
