"""What the rendered dev overlay tells each service process, resolved the way Kubernetes would.

The rehearsal reads the manifests, never a retyped copy of them: each Deployment's environment
comes from its envFrom ConfigMaps, its env entries (with `$(VAR)` expansion), and the Secrets
it references. Secrets that are not committed (the dev overlay's ExternalSecrets, the
`<cluster>-app` Secrets CloudNativePG generates) get rehearsal values from the caller. Anything
the manifests reference but do not provide is a `ManifestError`, as it would leave a pod stuck
in a real cluster.
"""

import base64
import re
from dataclasses import dataclass, field


class ManifestError(Exception):
    """A reference in the manifests that points at nothing (or at the wrong port)."""


# Keys of the Secret `<cluster>-app` that CloudNativePG generates for a Cluster's owner.
CNPG_APP_KEYS = {"uri", "username", "password", "host", "port", "dbname", "jdbc-uri", "pgpass", "fqdn-uri"}


@dataclass
class Rendered:
    """The resources of one rendered overlay, by kind and name."""

    by_kind: dict = field(default_factory=dict)

    @classmethod
    def from_docs(cls, docs):
        rendered = cls()
        for doc in docs:
            if doc:
                rendered.by_kind.setdefault(doc["kind"], {})[doc["metadata"]["name"]] = doc
        return rendered

    def all(self, kind):
        return self.by_kind.get(kind, {})

    def get(self, kind, name):
        return self.all(kind).get(name)


def external_secret_keys(rendered):
    """Secret name -> the keys an ExternalSecret of the overlay writes into it."""
    keys = {}
    for es in rendered.all("ExternalSecret").values():
        spec = es["spec"]
        target = (spec.get("target") or {}).get("name") or es["metadata"]["name"]
        found = keys.setdefault(target, set())
        for item in spec.get("data", []):
            found.add(item["secretKey"])
        for item in spec.get("dataFrom", []):
            for rewrite in item.get("rewrite", []):
                found.add(rewrite["regexp"]["target"])
    return keys


def image_env(dockerfile_text):
    """The ENV of the Dockerfile's last stage: what every container starts with."""
    last_stage = re.split(r"(?m)^FROM ", dockerfile_text)[-1]
    env = {}
    for line in re.findall(r"(?m)^ENV (.+?)(?<!\\)$", last_stage):
        for name, value in re.findall(r"(\w+)=(\S+)", line):
            env[name] = value
    return env


def expand(value, env):
    """Kubernetes' `$(VAR)` expansion: defined names are replaced, `$$` escapes, others stay."""

    def replace(match):
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))

    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", replace, value)


@dataclass
class ServiceEnv:
    """One Deployment's container as the rehearsal runs it."""

    name: str
    env: dict
    container_port: int
    readiness_path: str
    databases: list


def container_port(deployment, container, port_ref):
    """The container port a Service's targetPort or a probe's port names."""
    for port in container.get("ports", []):
        if port_ref in (port.get("name"), port.get("containerPort")):
            return port["containerPort"]
    raise ManifestError(
        "Deployment %s: no container port %r (it has %s)"
        % (deployment, port_ref, [p.get("name") or p.get("containerPort") for p in container.get("ports", [])])
    )


def service_env(rendered, deployment, base_env, generated_secret):
    """Resolves one Deployment's environment.

    `generated_secret(secret, key, kind)` supplies values for Secrets the overlay only describes:
    kind is "external" (an ExternalSecret) or "cnpg:<cluster>" (CloudNativePG's app Secret).
    """
    name = deployment["metadata"]["name"]
    pod = deployment["spec"]["template"]["spec"]
    container = pod["containers"][0]
    external = external_secret_keys(rendered)
    env = dict(base_env)
    databases = []

    for source in container.get("envFrom", []):
        ref = source.get("configMapRef") or source.get("secretRef")
        kind = "ConfigMap" if "configMapRef" in source else "Secret"
        found = rendered.get(kind, ref["name"])
        if found is None:
            if ref.get("optional"):
                continue
            raise ManifestError("Deployment %s: envFrom names the %s %s, which the overlay lacks" % (name, kind, ref["name"]))
        data = found.get("data", {})
        if kind == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in data.items()}
        env.update({source.get("prefix", "") + k: v for k, v in data.items()})

    for item in container.get("env", []):
        var = item["name"]
        if "value" in item:
            env[var] = expand(item["value"], env)
            continue
        source = item.get("valueFrom") or {}
        if "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            secret, key = ref["name"], ref["key"]
            committed = rendered.get("Secret", secret)
            cluster = secret[: -len("-app")] if secret.endswith("-app") else None
            if committed is not None and key in committed.get("data", {}):
                env[var] = base64.b64decode(committed["data"][key]).decode()
            elif key in external.get(secret, ()):
                env[var] = generated_secret(secret, key, "external")
            elif cluster and rendered.get("Cluster", cluster) is not None and key in CNPG_APP_KEYS:
                databases.append(cluster)
                env[var] = generated_secret(secret, key, "cnpg:" + cluster)
            elif ref.get("optional"):
                continue
            else:
                raise ManifestError(
                    "Deployment %s: %s reads key %s of the Secret %s, which nothing in the overlay "
                    "provides (no Secret, ExternalSecret or CloudNativePG Cluster makes it)" % (name, var, key, secret)
                )
        elif "configMapKeyRef" in source:
            ref = source["configMapKeyRef"]
            found = rendered.get("ConfigMap", ref["name"])
            if found is not None and ref["key"] in found.get("data", {}):
                env[var] = found["data"][ref["key"]]
            elif not ref.get("optional"):
                raise ManifestError(
                    "Deployment %s: %s reads the missing ConfigMap key %s/%s" % (name, var, ref["name"], ref["key"])
                )
        else:
            raise ManifestError("Deployment %s: %s comes from %s, which the rehearsal cannot provide" % (name, var, list(source)))

    # The port the Service sends traffic to must be the one the process listens on (PORT).
    targets = [
        port["targetPort"]
        for svc in rendered.all("Service").values()
        if svc["spec"].get("selector", {}).get("app.kubernetes.io/name") == name
        for port in svc["spec"]["ports"]
    ]
    if not targets:
        raise ManifestError("Deployment %s: no Service selects it" % name)
    port = container_port(name, container, targets[0])
    if str(env.get("PORT")) != str(port):
        raise ManifestError(
            "Deployment %s: the Service sends traffic to container port %s, but the process listens "
            "on PORT=%s" % (name, port, env.get("PORT"))
        )
    probe = container.get("readinessProbe", {}).get("httpGet")
    if not probe:
        raise ManifestError("Deployment %s: no HTTP readiness probe" % name)
    if container_port(name, container, probe["port"]) != port:
        raise ManifestError("Deployment %s: the readiness probe checks another port than the Service's" % name)
    return ServiceEnv(name, env, port, probe["path"], databases)


def service_for_host(rendered, host):
    """The Service an in-cluster host name (`svc`, `svc.ns`, `svc.ns.svc.cluster.local`) means."""
    return rendered.get("Service", host.split(".")[0])


def backend_workload(rendered, service):
    """The name of the workload (Deployment or StatefulSet) a Service selects."""
    return service["spec"].get("selector", {}).get("app.kubernetes.io/name")


def service_port(rendered, service_name, port):
    """Checks that the Service has `port`, and returns the Service."""
    service = rendered.get("Service", service_name)
    if service is None:
        raise ManifestError("no Service %s" % service_name)
    ports = [p["port"] for p in service["spec"]["ports"]]
    if int(port) not in ports:
        raise ManifestError("Service %s has no port %s (it has %s)" % (service_name, port, ports))
    return service


def gateway_routes(rendered, gateway_name, listener):
    """(path prefix, Service name, Service port, response headers, timeout) of every HTTPRoute
    rule attached to the Gateway's listener, longest prefix first."""
    routes = []
    for route in rendered.all("HTTPRoute").values():
        parents = route["spec"].get("parentRefs", [])
        if not any(p["name"] == gateway_name and p.get("sectionName", listener) == listener for p in parents):
            continue
        for rule in route["spec"].get("rules", []):
            backends = rule.get("backendRefs", [])
            if len(backends) != 1:
                raise ManifestError("HTTPRoute %s: the rehearsal expects one backend per rule" % route["metadata"]["name"])
            headers = {}
            for f in rule.get("filters", []):
                if f["type"] == "ResponseHeaderModifier":
                    for h in f["responseHeaderModifier"].get("set", []) + f["responseHeaderModifier"].get("add", []):
                        headers[h["name"]] = h["value"]
            for match in rule.get("matches", [{"path": {"type": "PathPrefix", "value": "/"}}]):
                path = match.get("path", {"type": "PathPrefix", "value": "/"})
                if path["type"] != "PathPrefix":
                    raise ManifestError("HTTPRoute %s: only PathPrefix matches are rehearsed" % route["metadata"]["name"])
                routes.append(
                    (path["value"], backends[0]["name"], backends[0]["port"], headers, rule.get("timeouts", {}).get("request"))
                )
    return sorted(routes, key=lambda r: -len(r[0]))
