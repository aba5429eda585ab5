"""Just enough of the NATS protocol to delete the JetStream streams a rehearsal made.

The rehearsal runs under a prefix of its own (`<prefix>_TICKETS`, ...) on the machine's NATS
server; afterwards its streams are deleted through JetStream's API subjects, as `nats stream rm`
would, so that runs leave nothing behind. Standard library only: no NATS client is installed here.
"""

import json
import socket
import uuid


class JetStream:
    """A request/reply connection to one NATS server's JetStream API."""

    def __init__(self, host, port, timeout=5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        if not self.file.readline().startswith(b"INFO "):
            raise OSError("%s:%d did not greet with INFO: not a NATS server" % (host, port))
        self.inbox = "_INBOX.%s" % uuid.uuid4().hex
        self.sock.sendall(b'CONNECT {"verbose":false,"pedantic":false,"headers":false}\r\nSUB %s.* 1\r\n' % self.inbox.encode())

    def request(self, subject, body):
        """Publishes `body` (JSON) to `subject` and returns the decoded reply."""
        reply = "%s.%s" % (self.inbox, uuid.uuid4().hex[:8])
        payload = json.dumps(body).encode()
        self.sock.sendall(b"PUB %s %s %d\r\n%s\r\n" % (subject.encode(), reply.encode(), len(payload), payload))
        while True:
            line = self.file.readline()
            if not line:
                raise OSError("NATS closed the connection")
            if line.startswith(b"PING"):
                self.sock.sendall(b"PONG\r\n")
            elif line.startswith(b"-ERR"):
                raise OSError("NATS: " + line.decode().strip())
            elif line.startswith(b"MSG "):
                parts = line.split()
                data = self.file.read(int(parts[-1]) + 2)[:-2]
                if parts[1].decode() == reply:
                    return json.loads(data)

    def stream_names(self):
        names, offset = [], 0
        while True:
            page = self.request("$JS.API.STREAM.NAMES", {"offset": offset})
            names += page.get("streams") or []
            offset += page.get("limit", 0) or len(page.get("streams") or [])
            if not page.get("streams") or offset >= page.get("total", 0):
                return names

    def delete_streams(self, prefix):
        """Deletes every stream named `<prefix>_...`; returns their names."""
        deleted = []
        for name in self.stream_names():
            if name.startswith(prefix + "_"):
                answer = self.request("$JS.API.STREAM.DELETE." + name, {})
                if answer.get("success"):
                    deleted.append(name)
        return deleted

    def close(self):
        self.sock.close()
