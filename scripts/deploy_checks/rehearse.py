"""The deploy rehearsal: every service of the dev overlay as its own process, behind nginx.

Run by scripts/rehearse (which installs nginx and renders the overlay). Each Deployment becomes
one process of its own binary, with the environment the manifests give it; in-cluster host
names are mapped to this machine's PostgreSQL (a fresh database per service), NATS (a prefix
of the run's own) and Redis; nginx routes the Gateway's HTTPRoutes to the processes. Then the
API flow and the browser test go through nginx, with the orders process killed (SIGKILL) and
started again halfway. A reference the manifests leave dangling fails the run.
"""

import argparse
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import yaml

from . import flow
from .jetstream import JetStream
from .manifests import (
    ManifestError,
    Rendered,
    backend_workload,
    gateway_routes,
    image_env,
    service_env,
    service_for_host,
    service_port,
)

# This machine's servers, standing in for the cluster's.
PG = "postgres://postgres@127.0.0.1:5432"
NATS = ("127.0.0.1", 4222)
REDIS = ("127.0.0.1", 6379)
# nginx's per-client-IP bucket, filled with (requests, unit) from the BackendTrafficPolicy.
RATE_ZONE = "  limit_req_zone $binary_remote_addr zone=edge:1m rate=%d%s;\n  limit_req_status 429;\n"


def say(message):
    print("==> " + message, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def psql(sql):
    subprocess.run(["psql", PG + "/postgres", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True, capture_output=True)


class Rehearsal:
    def __init__(self, args):
        self.args = args
        self.run_id = secrets.token_hex(6)
        # t + 12 hex digits: the tests' namespace format, so a leftover stream is swept by them.
        self.prefix = "t" + self.run_id
        self.queue = self.prefix + ":rehearse:expiration"
        self.logs = args.logs
        self.secrets = {}
        self.databases = {}
        self.processes = {}
        self.services = {}
        self.ports = {}
        self.nginx = None

    # ---- the manifests ------------------------------------------------------------------

    def generated_secret(self, secret, key, kind):
        if kind.startswith("cnpg:"):
            cluster = kind[len("cnpg:") :]
            if key != "uri":
                raise ManifestError("the rehearsal provides only `uri` of %s, not %s" % (secret, key))
            if cluster not in self.databases:
                self.databases[cluster] = "bt_test_rehearse_%s_%s" % (self.run_id, cluster.replace("-", "_"))
            return "%s/%s" % (PG, self.databases[cluster])
        # A rehearsal-only value, the same for every service that reads it (JWT_KEY is shared).
        return self.secrets.setdefault((secret, key), "rehearsal-" + secrets.token_hex(24))

    def map_hosts(self, name, env, rendered):
        """Points every in-cluster URL at this machine: services at their processes, NATS and
        Redis at the local servers. An URL to a Service port that does not exist fails."""
        url_re = re.compile(r"^(\w+)://(?:([^@/]*)@)?([A-Za-z0-9.-]+)(?::(\d+))?(.*)$")
        for var, value in list(env.items()):
            m = url_re.match(value)
            if not m:
                continue
            scheme, _, host, port, rest = m.groups()
            if host in ("127.0.0.1", "localhost"):
                continue
            service = service_for_host(rendered, host)
            if service is None:
                if "." in host and not host.endswith(".svc.cluster.local"):
                    continue  # outside the cluster (Stripe's API, say)
                raise ManifestError("Deployment %s: %s points at %s, which is no Service of the overlay" % (name, var, host))
            port = port or {"http": 80, "nats": 4222, "redis": 6379}.get(scheme)
            service_port(rendered, service["metadata"]["name"], port)
            workload = backend_workload(rendered, service)
            if workload in self.services:
                env[var] = "%s://127.0.0.1:%d%s" % (scheme, self.ports[workload], rest)
            elif scheme == "nats":
                env[var] = "nats://%s:%d%s" % (NATS[0], NATS[1], rest)
            elif scheme == "redis":
                # The local Redis has no password; the one in the URL is the rehearsal's.
                env[var] = "redis://%s:%d%s" % (REDIS[0], REDIS[1], rest)
            else:
                raise ManifestError("Deployment %s: %s points at %s, which the rehearsal cannot stand in for" % (name, var, host))

    def prepare(self):
        docs = list(yaml.safe_load_all(open(self.args.rendered)))
        rendered = Rendered.from_docs(docs)
        base_env = image_env(open(self.args.dockerfile).read())
        deployments = rendered.all("Deployment")
        if not deployments:
            raise ManifestError("the overlay has no Deployment")
        for name, deployment in deployments.items():
            self.services[name] = service_env(rendered, deployment, base_env, self.generated_secret)
            self.ports[name] = free_port()
        owners = {}
        for name, svc in self.services.items():
            for cluster in svc.databases:
                owners.setdefault(cluster, []).append(name)
        shared = {cluster: names for cluster, names in owners.items() if len(names) > 1}
        if shared:
            raise ManifestError(
                "each service owns its database, but %s"
                % "; ".join("%s read %s-app" % (" and ".join(names), cluster) for cluster, names in shared.items())
            )
        for name, svc in self.services.items():
            self.map_hosts(name, svc.env, rendered)
            # What the rehearsal changes, and nothing else: its own port, NATS namespace and
            # job queue, so that it shares the machine's servers with the tests.
            svc.env["PORT"] = str(self.ports[name])
            svc.env["NATS_PREFIX"] = self.prefix
            # JetStream reserves each stream's byte limit up front: unlimited on a shared server.
            svc.env["NATS_STREAM_MAX_BYTES"] = "-1"
            svc.env["EXPIRATION_QUEUE"] = self.queue
        self.routes = self.proxy_routes(rendered)
        policy = next(iter(rendered.all("BackendTrafficPolicy").values()), {})
        spec = policy.get("spec", {})
        self.body_limit = (spec.get("requestBuffer") or {}).get("limit", "1Mi")
        # The per-client-IP limit, as nginx's limit_req: one bucket for all routes, so stricter
        # than Envoy's bucket per route; a flow that passes under it passes under Envoy's.
        self.rate = None
        for rule in ((spec.get("rateLimit") or {}).get("local") or {}).get("rules", []):
            per_ip = any((c.get("sourceCIDR") or {}).get("type") == "Distinct" for c in rule.get("clientSelectors", []))
            unit = {"Second": "r/s", "Minute": "r/m"}.get(rule["limit"]["unit"])
            if per_ip and unit:
                self.rate = (rule["limit"]["requests"], unit)
        say(
            "from the manifests: %d services, %d routes, Secrets generated for %s"
            % (len(self.services), len(self.routes), ", ".join(sorted("%s/%s" % k for k in self.secrets)) or "none")
        )

    def proxy_routes(self, rendered):
        gateways = rendered.all("Gateway")
        if len(gateways) != 1:
            raise ManifestError("expected one Gateway, found %d" % len(gateways))
        gateway = next(iter(gateways.values()))
        routes = gateway_routes(rendered, gateway["metadata"]["name"], "https")
        if not routes:
            raise ManifestError("no HTTPRoute is attached to the Gateway's https listener")
        resolved = []
        for prefix, service_name, port, headers, timeout in routes:
            service = service_port(rendered, service_name, port)
            workload = backend_workload(rendered, service)
            if workload not in self.services:
                raise ManifestError("HTTPRoute to %s: it selects %s, which is no Deployment" % (service_name, workload))
            resolved.append((prefix, workload, headers, timeout))
        return resolved

    # ---- the processes ------------------------------------------------------------------

    def start(self, name):
        svc = self.services[name]
        binary = os.path.join(self.args.bin_dir, name)
        if not os.access(binary, os.X_OK):
            raise SystemExit("no binary %s (build it: cargo build --release -p %s)" % (binary, name))
        log = open(os.path.join(self.logs, name + ".log"), "a")
        # Only the manifests' environment: nothing leaks in from this shell.
        self.processes[name] = subprocess.Popen([binary], env=svc.env, stdout=log, stderr=subprocess.STDOUT)

    def wait_ready(self, name, seconds=90):
        url = "http://127.0.0.1:%d%s" % (self.ports[name], self.services[name].readiness_path)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.processes[name].poll() is not None:
                raise ManifestError(
                    "%s exited with %s before it was ready; its log (%s/%s.log) ends with:\n%s"
                    % (name, self.processes[name].returncode, self.logs, name, self.tail(name))
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.3)
        raise ManifestError("%s was not ready after %d s; its log ends with:\n%s" % (name, seconds, self.tail(name)))

    def tail(self, name, lines=15):
        path = os.path.join(self.logs, name + ".log")
        with open(path, errors="replace") as f:
            return "".join("      " + line for line in f.readlines()[-lines:])

    def start_all(self):
        for db in self.databases.values():
            psql('CREATE DATABASE "%s"' % db)
        for name in self.services:
            self.start(name)
        for name in self.services:
            self.wait_ready(name)
        say("ready: " + ", ".join("%s :%d" % (n, p) for n, p in self.ports.items()))

    def start_nginx(self):
        root = os.path.join(self.logs, "nginx")
        os.makedirs(root, exist_ok=True)
        self.proxy_port = free_port()
        size = self.body_limit.replace("Mi", "m").replace("Ki", "k")
        locations = []
        for prefix, workload, headers, timeout in self.routes:
            add = "".join('      add_header %s "%s" always;\n' % (k, v) for k, v in headers.items())
            read_timeout = "      proxy_read_timeout %s;\n" % timeout if timeout else ""
            body = "      proxy_pass http://127.0.0.1:%d;\n%s%s" % (self.ports[workload], add, read_timeout)
            if prefix == "/":
                locations.append("    location / {\n%s    }\n" % body)
            else:
                # Gateway API's PathPrefix matches whole segments: /api/users and /api/users/...
                p = prefix.rstrip("/")
                locations.append("    location = %s {\n%s    }\n    location %s/ {\n%s    }\n" % (p, body, p, body))
        conf = """pid %(root)s/nginx.pid;
error_log %(root)s/error.log warn;
daemon off;
events {}
http {
  access_log %(root)s/access.log;
  client_body_temp_path %(root)s/body;
  proxy_temp_path %(root)s/proxy;
  fastcgi_temp_path %(root)s/fastcgi;
  uwsgi_temp_path %(root)s/uwsgi;
  scgi_temp_path %(root)s/scgi;
  client_max_body_size %(size)s;
%(rate_zone)s  server {
    listen 127.0.0.1:%(port)d;
%(rate_limit)s    proxy_set_header Host $http_host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
%(locations)s  }
}
""" % {
            "root": root,
            "size": size,
            "port": self.proxy_port,
            "locations": "".join(locations),
            "rate_zone": RATE_ZONE % self.rate if self.rate else "",
            "rate_limit": "    limit_req zone=edge burst=%d nodelay;\n" % self.rate[0] if self.rate else "",
        }
        with open(os.path.join(root, "nginx.conf"), "w") as f:
            f.write(conf)
        subprocess.run([self.args.nginx, "-t", "-q", "-p", root, "-c", os.path.join(root, "nginx.conf")], check=True)
        self.nginx = subprocess.Popen([self.args.nginx, "-p", root, "-c", os.path.join(root, "nginx.conf")])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.proxy_port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        self.base_url = "http://127.0.0.1:%d" % self.proxy_port
        say(
            "nginx at %s (config: %s/nginx.conf; bodies up to %s, %s per client IP): %s"
            % (
                self.base_url,
                root,
                size,
                "%d%s" % self.rate if self.rate else "no limit",
                ", ".join("%s -> %s" % (prefix, workload) for prefix, workload, _, _ in self.routes),
            )
        )

    # ---- the checks ---------------------------------------------------------------------

    def api_flow(self, victim):
        say("API flow through nginx, with %s killed (SIGKILL) and started again halfway" % victim)
        seller, buyer = flow.Client(self.base_url), flow.Client(self.base_url)
        flow.api_documentation(seller)
        flow.sign_up(seller, "rehearsal-seller")
        flow.sign_up(buyer, "rehearsal-buyer")
        ticket, headers = flow.list_ticket(seller, "Rehearsal ticket")
        if "Strict-Transport-Security" not in headers:
            raise flow.FlowError("the HTTPRoute's HSTS header is missing from the answer")
        order = flow.reserve(buyer, ticket["id"])
        # Once tickets marks the ticket reserved, order.created has left the orders outbox for
        # JetStream, where payments reads it too: nothing of it is left in the process.
        seller.wait_for(
            "/api/tickets/%s" % ticket["id"],
            lambda t: t.get("orderId") == order["id"],
            "ticket %s reserved by order.created" % ticket["id"],
        )
        self.processes[victim].send_signal(signal.SIGKILL)
        self.processes[victim].wait()
        flow.log("killed %s (SIGKILL)" % victim)
        # Paid while the victim is down (unless it takes the payment): the events it misses,
        # payment.created for orders, wait in JetStream for the new process.
        if victim != "payments":
            flow.pay(buyer, order["id"])
        self.start(victim)
        self.wait_ready(victim)
        flow.log("%s started again and is ready" % victim)
        if victim == "payments":
            flow.pay(buyer, order["id"])
        flow.wait_complete(buyer, order["id"])
        # A second purchase on the restarted process, start to end.
        ticket, _ = flow.list_ticket(seller, "Rehearsal ticket, after the restart")
        order = flow.reserve(buyer, ticket["id"])
        flow.pay(buyer, order["id"])
        flow.wait_complete(buyer, order["id"])

    def browser(self):
        script = os.path.join(self.args.root, "services/web/browser/run.sh")
        say("browser test through nginx: services/web/browser/run.sh (purchase scenario)")
        env = dict(
            os.environ, BASE_URL=self.base_url, SCENARIOS="purchase", SCREENSHOT_DIR=os.path.join(self.logs, "screenshots")
        )
        subprocess.run([script], env=env, check=True)

    def report_memory(self):
        rows = []
        for name, process in self.processes.items():
            try:
                status = open("/proc/%d/status" % process.pid).read()
            except OSError:
                continue
            rss = re.search(r"VmRSS:\s+(\d+)", status).group(1)
            peak = re.search(r"VmHWM:\s+(\d+)", status).group(1)
            rows.append("%s %d/%d MiB" % (name, int(rss) // 1024, int(peak) // 1024))
        say("memory (RSS now/peak): " + ", ".join(rows))

    # ---- the end ------------------------------------------------------------------------

    def stop(self):
        for process in list(self.processes.values()) + ([self.nginx] if self.nginx else []):
            if process.poll() is None:
                process.terminate()
        for process in list(self.processes.values()) + ([self.nginx] if self.nginx else []):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
        for db in self.databases.values():
            try:
                psql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % db)
            except subprocess.CalledProcessError as error:
                say("could not drop %s: %s" % (db, error.stderr.decode().strip()))
        try:
            jetstream = JetStream(*NATS)
            deleted = jetstream.delete_streams(self.prefix)
            jetstream.close()
            say("cleaned up: %d databases, %d streams (%s_*)" % (len(self.databases), len(deleted), self.prefix))
        except OSError as error:
            say("could not delete the streams %s_*: %s (the tests' sweep removes them later)" % (self.prefix, error))
        if shutil.which("redis-cli"):
            keys = subprocess.run(
                ["redis-cli", "--scan", "--pattern", self.prefix + ":*"], capture_output=True, text=True
            ).stdout.split()
            if keys:
                subprocess.run(["redis-cli", "del"] + keys, capture_output=True)


def main():
    parser = argparse.ArgumentParser(prog="scripts/rehearse", description=__doc__)
    parser.add_argument("--rendered", required=True, help="the rendered overlay (kubectl kustomize)")
    parser.add_argument("--dockerfile", required=True)
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--logs", required=True)
    parser.add_argument("--root", required=True)
    parser.add_argument("--nginx", default="nginx")
    parser.add_argument("--kill", default="orders", help="the service killed and restarted halfway")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args()
    os.makedirs(args.logs, exist_ok=True)
    started = time.monotonic()
    rehearsal = Rehearsal(args)
    try:
        rehearsal.prepare()
        if args.kill not in rehearsal.services:
            raise ManifestError("--kill %s: no such Deployment" % args.kill)
        rehearsal.start_all()
        rehearsal.start_nginx()
        rehearsal.api_flow(args.kill)
        if not args.no_browser:
            rehearsal.browser()
        rehearsal.report_memory()
    except (ManifestError, flow.FlowError) as error:
        print("==> error: %s" % error, file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as error:
        print("==> error: %s failed (exit %s)" % (" ".join(map(str, error.cmd)), error.returncode), file=sys.stderr)
        return 1
    finally:
        rehearsal.stop()
    say("the rehearsal passed in %.0f s (logs: %s)" % (time.monotonic() - started, args.logs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
