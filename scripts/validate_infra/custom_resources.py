"""Offline checks of the custom resources, which kubernetes-validate has no schema for.

No schema package for CloudNativePG, the Gateway API, Envoy Gateway, cert-manager or External
Secrets installs here, so each kind gets a small hand-written JSON schema of the fields this
project uses (required fields, types, enums, and no unknown fields where a typo would silently
do nothing), and the references between resources are followed: an HTTPRoute's Gateway and
backend Service port, a policy's target, a ScheduledBackup's Cluster, an ExternalSecret's
generator, a Cluster's ObjectStore. What the schemas leave out is listed in infra/k8s/README.md.

Usage: custom_resources.py RENDERED.yaml... Prints a summary line, then one line per problem;
exits 1 when there is any. The kinds it knows are printed with `--kinds`.
"""

import os
import sys

import jsonschema
import yaml


def obj(properties, required=(), closed=True):
    schema = {"type": "object", "properties": properties, "required": list(required)}
    if closed:
        schema["additionalProperties"] = False
    return schema


STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
ANY = {}
QUANTITY = {"type": "string", "pattern": r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|m|k|M|G)?$"}
DURATION = {"type": "string", "pattern": r"^([0-9]+(ms|s|m|h))+$"}
TARGET_REFS = {"type": "array", "minItems": 1, "items": obj({"group": STR, "kind": STR, "name": STR}, ["group", "kind", "name"])}
PARENT_REFS = {
    "type": "array",
    "minItems": 1,
    "items": obj({"group": STR, "kind": STR, "name": STR, "sectionName": STR, "namespace": STR}, ["name"]),
}
SECRET_KEY = obj({"name": STR, "key": STR}, ["name", "key"])
SECRET_STORE_REF = obj({"kind": {"enum": ["SecretStore", "ClusterSecretStore"]}, "name": STR}, ["name"])

SPECS = {
    ("gateway.networking.k8s.io/v1", "Gateway"): obj(
        {
            "gatewayClassName": STR,
            "listeners": {
                "type": "array",
                "minItems": 1,
                "items": obj(
                    {
                        "name": STR,
                        "protocol": {"enum": ["HTTP", "HTTPS", "TLS", "TCP", "UDP"]},
                        "port": INT,
                        "hostname": STR,
                        "tls": obj(
                            {
                                "mode": {"enum": ["Terminate", "Passthrough"]},
                                "certificateRefs": {
                                    "type": "array",
                                    "items": obj({"kind": STR, "group": STR, "name": STR}, ["name"]),
                                },
                            }
                        ),
                        "allowedRoutes": obj({"namespaces": obj({"from": {"enum": ["All", "Same", "Selector"]}})}),
                    },
                    ["name", "protocol", "port"],
                ),
            },
        },
        ["gatewayClassName", "listeners"],
    ),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"): obj(
        {
            "parentRefs": PARENT_REFS,
            "hostnames": {"type": "array", "items": STR},
            "rules": {
                "type": "array",
                "minItems": 1,
                "items": obj(
                    {
                        "matches": {
                            "type": "array",
                            "items": obj(
                                {
                                    "path": obj(
                                        {"type": {"enum": ["Exact", "PathPrefix", "RegularExpression"]}, "value": STR},
                                        ["type", "value"],
                                    ),
                                    "method": STR,
                                    "headers": ANY,
                                    "queryParams": ANY,
                                }
                            ),
                        },
                        "backendRefs": {
                            "type": "array",
                            "items": obj({"name": STR, "port": INT, "kind": STR, "group": STR, "weight": INT}, ["name", "port"]),
                        },
                        "filters": {
                            "type": "array",
                            "items": obj(
                                {
                                    "type": {
                                        "enum": [
                                            "RequestRedirect",
                                            "ResponseHeaderModifier",
                                            "RequestHeaderModifier",
                                            "URLRewrite",
                                        ]
                                    },
                                    "requestRedirect": obj(
                                        {
                                            "scheme": {"enum": ["http", "https"]},
                                            "statusCode": {"enum": [301, 302, 303, 307, 308]},
                                            "hostname": STR,
                                            "port": INT,
                                        }
                                    ),
                                    "responseHeaderModifier": obj({"set": ANY, "add": ANY, "remove": ANY}),
                                    "requestHeaderModifier": obj({"set": ANY, "add": ANY, "remove": ANY}),
                                    "urlRewrite": ANY,
                                },
                                ["type"],
                            ),
                        },
                        "timeouts": obj({"request": DURATION, "backendRequest": DURATION}),
                    }
                ),
            },
        },
        ["parentRefs", "rules"],
    ),
    ("gateway.envoyproxy.io/v1alpha1", "BackendTrafficPolicy"): obj(
        {
            "targetRefs": TARGET_REFS,
            "rateLimit": obj(
                {
                    "type": {"enum": ["Local", "Global"]},
                    "local": obj(
                        {
                            "rules": {
                                "type": "array",
                                "items": obj(
                                    {
                                        "clientSelectors": {
                                            "type": "array",
                                            "items": obj(
                                                {
                                                    "sourceCIDR": obj(
                                                        {"type": {"enum": ["Exact", "Distinct"]}, "value": STR}, ["value"]
                                                    ),
                                                    "headers": ANY,
                                                }
                                            ),
                                        },
                                        "limit": obj(
                                            {"requests": INT, "unit": {"enum": ["Second", "Minute", "Hour", "Day"]}},
                                            ["requests", "unit"],
                                        ),
                                    },
                                    ["limit"],
                                ),
                            }
                        },
                        ["rules"],
                    ),
                    "global": ANY,
                },
                ["type"],
            ),
            "requestBuffer": obj({"limit": QUANTITY}, ["limit"]),
            "timeout": obj(
                {
                    "http": obj(
                        {"requestTimeout": DURATION, "connectionIdleTimeout": DURATION, "maxConnectionDuration": DURATION}
                    ),
                    "tcp": ANY,
                }
            ),
        },
        ["targetRefs"],
    ),
    ("gateway.envoyproxy.io/v1alpha1", "ClientTrafficPolicy"): obj(
        {
            "targetRefs": TARGET_REFS,
            "timeout": obj({"http": obj({"requestReceivedTimeout": DURATION, "idleTimeout": DURATION}), "tcp": ANY}),
            "clientIPDetection": ANY,
            "enableProxyProtocol": BOOL,
        },
        ["targetRefs"],
    ),
    ("cert-manager.io/v1", "Issuer"): obj(
        {
            "selfSigned": obj({}),
            "acme": obj(
                {
                    "server": STR,
                    "email": STR,
                    "privateKeySecretRef": obj({"name": STR}, ["name"]),
                    "solvers": {
                        "type": "array",
                        "minItems": 1,
                        "items": obj(
                            {
                                "http01": obj(
                                    {"gatewayHTTPRoute": obj({"parentRefs": PARENT_REFS}, ["parentRefs"]), "ingress": ANY}
                                )
                            }
                        ),
                    },
                },
                ["server", "privateKeySecretRef", "solvers"],
            ),
        }
    ),
    ("postgresql.cnpg.io/v1", "Cluster"): obj(
        {
            "instances": {"type": "integer", "minimum": 1},
            "imageName": STR,
            "bootstrap": obj({"initdb": obj({"database": STR, "owner": STR}, ["database", "owner"]), "recovery": ANY}),
            "storage": obj({"size": QUANTITY, "storageClass": STR}, ["size"]),
            "resources": ANY,
            "primaryUpdateStrategy": {"enum": ["unsupervised", "supervised"]},
            "postgresql": obj(
                {
                    "synchronous": obj(
                        {
                            "method": {"enum": ["any", "first"]},
                            "number": INT,
                            "dataDurability": {"enum": ["required", "preferred"]},
                        },
                        ["method", "number"],
                    ),
                    "parameters": ANY,
                }
            ),
            "affinity": obj(
                {"enablePodAntiAffinity": BOOL, "topologyKey": STR, "podAntiAffinityType": {"enum": ["preferred", "required"]}}
            ),
            "plugins": {
                "type": "array",
                "items": obj(
                    {"name": STR, "isWALArchiver": BOOL, "parameters": obj({"barmanObjectName": STR}, ["barmanObjectName"])},
                    ["name"],
                ),
            },
            "externalClusters": ANY,
        },
        ["instances", "storage"],
    ),
    ("postgresql.cnpg.io/v1", "ScheduledBackup"): obj(
        {
            "schedule": {"type": "string", "pattern": r"^(\S+ ){5}\S+$"},  # six fields: seconds first
            "backupOwnerReference": {"enum": ["none", "self", "cluster"]},
            "target": {"enum": ["primary", "prefer-standby"]},
            "method": {"enum": ["barmanObjectStore", "volumeSnapshot", "plugin"]},
            "pluginConfiguration": obj({"name": STR}, ["name"]),
            "cluster": obj({"name": STR}, ["name"]),
        },
        ["schedule", "cluster"],
    ),
    ("barmancloud.cnpg.io/v1", "ObjectStore"): obj(
        {
            "retentionPolicy": {"type": "string", "pattern": r"^[1-9][0-9]*[dwm]$"},
            "configuration": obj(
                {
                    "destinationPath": {"type": "string", "pattern": "^s3://"},
                    "endpointURL": STR,
                    "s3Credentials": obj(
                        {"accessKeyId": SECRET_KEY, "secretAccessKey": SECRET_KEY}, ["accessKeyId", "secretAccessKey"]
                    ),
                    "wal": obj({"compression": {"enum": ["gzip", "bzip2", "snappy", "lz4", "zstd", "xz"]}, "maxParallel": INT}),
                    "data": obj({"compression": {"enum": ["gzip", "bzip2", "snappy"]}, "jobs": INT}),
                },
                ["destinationPath", "s3Credentials"],
            ),
        },
        ["configuration"],
    ),
    ("external-secrets.io/v1", "ExternalSecret"): obj(
        {
            "refreshInterval": STR,
            "secretStoreRef": SECRET_STORE_REF,
            "target": obj({"name": STR, "creationPolicy": {"enum": ["Owner", "Orphan", "Merge", "None"]}, "template": ANY}),
            "data": {
                "type": "array",
                "items": obj(
                    {"secretKey": STR, "remoteRef": obj({"key": STR, "property": STR, "version": STR}, ["key"])},
                    ["secretKey", "remoteRef"],
                ),
            },
            "dataFrom": {
                "type": "array",
                "items": obj(
                    {
                        "sourceRef": obj(
                            {"generatorRef": obj({"apiVersion": STR, "kind": STR, "name": STR}, ["apiVersion", "kind", "name"])}
                        ),
                        "extract": ANY,
                        "find": ANY,
                        "rewrite": {
                            "type": "array",
                            "items": obj({"regexp": obj({"source": STR, "target": STR}, ["source", "target"])}),
                        },
                    }
                ),
            },
        },
        ["target"],
    ),
    ("generators.external-secrets.io/v1alpha1", "Password"): obj(
        {
            "length": {"type": "integer", "minimum": 32},
            "digits": INT,
            "symbols": INT,
            "symbolCharacters": STR,
            "noUpper": BOOL,
            "allowRepeat": BOOL,
        },
        ["length"],
    ),
}


def check(docs):
    problems, counts = [], {}
    index = {}
    for d in docs:
        index.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    for d in docs:
        key = (d["apiVersion"], d["kind"])
        if key not in SPECS:
            continue
        counts[d["kind"]] = counts.get(d["kind"], 0) + 1
        where = "%s %s" % (d["kind"], d["metadata"]["name"])
        for error in jsonschema.Draft7Validator(SPECS[key]).iter_errors(d.get("spec", {})):
            problems.append("%s: spec.%s: %s" % (where, ".".join(map(str, error.absolute_path)), error.message))
        spec = d.get("spec", {})
        # References between resources of the overlay.
        for ref in spec.get("parentRefs", []):
            gateway = index.get("Gateway", {}).get(ref["name"])
            if gateway is None:
                problems.append("%s: parentRef %s is no Gateway of the overlay" % (where, ref["name"]))
            elif "sectionName" in ref and ref["sectionName"] not in [li["name"] for li in gateway["spec"]["listeners"]]:
                problems.append("%s: the Gateway %s has no listener %s" % (where, ref["name"], ref["sectionName"]))
        for rule in spec.get("rules", []) if d["kind"] == "HTTPRoute" else []:
            for backend in rule.get("backendRefs", []):
                service = index.get("Service", {}).get(backend["name"])
                if service is None:
                    problems.append("%s: backend %s is no Service of the overlay" % (where, backend["name"]))
                elif backend["port"] not in [p["port"] for p in service["spec"]["ports"]]:
                    problems.append("%s: the Service %s has no port %s" % (where, backend["name"], backend["port"]))
        for ref in spec.get("targetRefs", []):
            if ref["name"] not in index.get(ref["kind"], {}):
                problems.append("%s: target %s %s is not in the overlay" % (where, ref["kind"], ref["name"]))
        if d["kind"] == "ScheduledBackup" and spec.get("cluster", {}).get("name") not in index.get("Cluster", {}):
            problems.append("%s: no Cluster %s" % (where, spec.get("cluster", {}).get("name")))
        for plugin in spec.get("plugins", []) if d["kind"] == "Cluster" else []:
            store = plugin.get("parameters", {}).get("barmanObjectName")
            if store not in index.get("ObjectStore", {}):
                problems.append(
                    "%s: plugin %s names the ObjectStore %s, which is not in the overlay" % (where, plugin["name"], store)
                )
        for item in spec.get("dataFrom", []) if d["kind"] == "ExternalSecret" else []:
            gen = item.get("sourceRef", {}).get("generatorRef")
            if gen and gen["name"] not in index.get(gen["kind"], {}):
                problems.append("%s: generator %s %s is not in the overlay" % (where, gen["kind"], gen["name"]))
        if d["kind"] == "ExternalSecret" and "secretStoreRef" not in spec and not spec.get("dataFrom"):
            problems.append("%s: neither a secretStoreRef nor a generator" % where)
        issuer = d.get("metadata", {}).get("annotations", {}).get("cert-manager.io/issuer")
        if d["kind"] == "Gateway" and issuer and issuer not in index.get("Issuer", {}):
            problems.append("%s: cert-manager.io/issuer names %s, which is no Issuer of the overlay" % (where, issuer))
        if d["kind"] == "Gateway" and not issuer:
            problems.append("%s: no cert-manager.io/issuer annotation, so nothing issues its certificate" % where)
    return counts, problems


def main(paths):
    if paths == ["--kinds"]:
        for api, kind in sorted(SPECS):
            print("%s %s" % (api, kind))
        return 0
    total, problems = {}, []
    for path in paths:
        overlay = os.path.basename(path).rsplit(".", 1)[0]
        docs = [d for d in yaml.safe_load_all(open(path)) if d]
        counts, found = check(docs)
        for kind, n in counts.items():
            total[kind] = total.get(kind, 0) + n
        problems += ["%s: %s" % (overlay, p) for p in found]
    print(
        "%d custom resources of %d kinds checked offline (%s)"
        % (sum(total.values()), len(total), ", ".join("%s %d" % kv for kv in sorted(total.items())))
    )
    for p in problems:
        print("    " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
