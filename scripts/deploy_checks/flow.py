"""The buyer's path through the public API: sign up, list a ticket, reserve it, pay or cancel.

Used by the deploy rehearsal (through its local proxy) and by the Deploy workflow's smoke test
(through the public URL). Standard library only, so it runs anywhere Python 3 does.
"""

import http.cookiejar
import json
import ssl
import time
import urllib.error
import urllib.request
import uuid


class FlowError(Exception):
    """A step of the flow got an answer it should not have."""


class Client:
    """A cookie-keeping JSON client for one site."""

    def __init__(self, base_url, insecure=False):
        self.base_url = base_url.rstrip("/")
        context = ssl._create_unverified_context() if insecure else None
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
            urllib.request.HTTPSHandler(context=context),
        )

    def call(self, method, path, body=None):
        """Returns (status, decoded JSON body or None, headers)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with self.opener.open(request, timeout=15) as response:
                status, raw, headers = response.status, response.read(), response.headers
        except urllib.error.HTTPError as error:
            status, raw, headers = error.code, error.read(), error.headers
        try:
            decoded = json.loads(raw) if raw else None
        except ValueError:
            decoded = None
        return status, decoded, headers

    def expect(self, method, path, body, status, retry_on=(), seconds=20.0):
        """Calls until the answer's status is `status`; retries while it is one of `retry_on`
        (e.g. 404 while an event has not reached the service yet) for up to `seconds`."""
        deadline = time.monotonic() + seconds
        while True:
            got, decoded, headers = self.call(method, path, body)
            if got == status:
                return decoded, headers
            if got not in retry_on or time.monotonic() > deadline:
                raise FlowError("%s %s answered %s, expected %s: %s" % (method, path, got, status, decoded))
            time.sleep(0.3)

    def wait_for(self, path, check, what, seconds=30.0):
        """GETs `path` until `check(body)` holds."""
        deadline = time.monotonic() + seconds
        body = None
        while time.monotonic() < deadline:
            status, body, _ = self.call("GET", path)
            if status == 200 and check(body):
                return body
            time.sleep(0.3)
        raise FlowError("%s: not after %.0f s (last answer: %s)" % (what, seconds, body))


def log(message):
    print("    " + message, flush=True)


def api_documentation(client):
    """The merged API document at /api/openapi.json and Swagger UI at /api/docs/ (the web
    service serves both)."""
    document, _ = client.expect("GET", "/api/openapi.json", None, 200)
    if "/api/tickets" not in (document or {}).get("paths", {}):
        raise FlowError("/api/openapi.json does not document /api/tickets")
    status, _, headers = client.call("GET", "/api/docs/")
    if status != 200 or not headers.get("Content-Type", "").startswith("text/html"):
        raise FlowError("/api/docs/ answered %s (%s), expected Swagger UI's page" % (status, headers.get("Content-Type")))
    log("the API document and Swagger UI are served")


def sign_up(client, label):
    email = "%s-%s@example.com" % (label, uuid.uuid4().hex[:12])
    user, _ = client.expect("POST", "/api/users/signup", {"email": email, "password": "rehearsal-password"}, 201)
    log("signed up %s" % email)
    return user


def list_ticket(client, title):
    ticket, headers = client.expect("POST", "/api/tickets", {"title": title, "price": 42.5}, 201)
    log("listed ticket %s" % ticket["id"])
    return ticket, headers


def reserve(client, ticket_id):
    # 404 until the orders service has heard ticket.created.
    order, _ = client.expect("POST", "/api/orders", {"ticketId": ticket_id}, 201, retry_on=(404,))
    log("reserved it: order %s (%s)" % (order["id"], order["status"]))
    return order


def pay(client, order_id, token="tok_visa"):
    # 404 until the payments service has heard order.created.
    payment, _ = client.expect("POST", "/api/payments", {"token": token, "orderId": order_id}, 201, retry_on=(404,))
    log("paid with %s: payment %s" % (token, payment["id"]))
    return payment


def wait_complete(client, order_id, seconds=30.0):
    client.wait_for("/api/orders/%s" % order_id, lambda o: o.get("status") == "complete", "order %s complete" % order_id, seconds)
    log("order %s is complete" % order_id)


def cancel(client, order_id):
    client.expect("DELETE", "/api/orders/%s" % order_id, None, 204)
    client.wait_for("/api/orders/%s" % order_id, lambda o: o.get("status") == "cancelled", "order %s cancelled" % order_id)
    log("cancelled order %s" % order_id)
