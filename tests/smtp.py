"""A real SMTP server for tests (aiosmtpd on localhost): the `smtp` fixture in the root
conftest points Django's SMTP backend at it and yields its Inbox."""

import time
from email import message_from_bytes


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"

    def wait_for(self, count: int, timeout: float = 10.0):
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages
