"""What no schema sees: every service of the base has a crate (the Deploy workflow builds only
those) and a skaffold artifact, the third-party images are pinned by digest, and every Secret
that staging and prod need (and that no CloudNativePG Cluster generates) is in the Deploy
workflow's check before it applies them.

Usage: consistency.py RENDERED_DIR (run from the repository root). Prints a one-line summary,
then one line per problem; exits 1 when there is any.
"""

import glob
import os
import re
import sys

import yaml

# The project's own images are pinned to the commit's tag by the Deploy workflow.
OWN_IMAGES = tuple("/" + s for s in ("auth", "tickets", "orders", "expiration", "payments", "notifications", "web"))
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")

out = sys.argv[1]
problems = []
base = yaml.safe_load(open("infra/k8s/base/kustomization.yaml"))
services = [c for c in base.get("components", []) if os.path.exists("infra/k8s/base/%s/deployment.yaml" % c)]
skaffold = yaml.safe_load(open("skaffold.yaml"))
artifacts = {a["image"]: a for a in skaffold.get("build", {}).get("artifacts", [])}
for service in services:
    if not os.path.exists("services/%s/Cargo.toml" % service):
        problems.append("%s: no services/%s/Cargo.toml, so no image is ever built for it" % (service, service))
    artifact = artifacts.get("buytickets/" + service)
    if artifact is None:
        problems.append("%s: no artifact buytickets/%s in skaffold.yaml" % (service, service))
    elif (artifact.get("docker") or {}).get("buildArgs", {}).get("SERVICE") != service:
        problems.append("%s: its skaffold artifact does not build with SERVICE=%s" % (service, service))

deploy = open(".github/workflows/deploy.yml").read()
for path in sorted(glob.glob(os.path.join(out, "*.yaml"))):
    overlay = os.path.basename(path)[:-5]
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    generated = {d["metadata"]["name"] for d in docs if d["kind"] == "Secret"}
    # CloudNativePG makes <cluster>-app for each Cluster; the operator, not the workflow, owns it.
    generated |= {d["metadata"]["name"] + "-app" for d in docs if d["kind"] == "Cluster"}
    for d in docs:
        if d["kind"] == "Cluster":
            image = d["spec"].get("imageName", "")
            if not DIGEST.search(image):
                problems.append("%s: Cluster %s runs %r, not pinned by digest" % (overlay, d["metadata"]["name"], image))
    required = set()
    for d in docs:
        if d["kind"] not in ("Deployment", "StatefulSet"):
            continue
        pod = d["spec"]["template"]["spec"]
        name = d["metadata"]["name"]
        for c in pod.get("containers", []) + pod.get("initContainers", []):
            image = c["image"]
            if ":" not in image.rsplit("/", 1)[-1] and "@" not in image:
                problems.append("%s: %s %s runs %s without a tag" % (overlay, d["kind"], name, image))
            if not image.split(":")[0].endswith(OWN_IMAGES) and not DIGEST.search(image):
                problems.append(
                    "%s: %s %s runs %s, not pinned by digest (name:tag@sha256:...)" % (overlay, d["kind"], name, image)
                )
            if d["kind"] == "Deployment" and overlay != "dev" and not image.startswith("registry.digitalocean.com/buytickets/"):
                problems.append("%s: Deployment %s runs %s, not an image of the registry" % (overlay, name, image))
            for env in c.get("env", []):
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    required.add(ref["name"])
        for volume in pod.get("volumes", []):
            if "secret" in volume and not volume["secret"].get("optional"):
                required.add(volume["secret"]["secretName"])
        for secret in pod.get("imagePullSecrets", []):
            required.add(secret["name"])
    if overlay == "dev":
        continue
    for secret in sorted(required - generated):
        if not re.search(r"\b%s\b" % re.escape(secret), deploy):
            problems.append("%s needs the Secret %s, which the Deploy workflow does not check for" % (overlay, secret))

print(
    "%d services with a crate, a skaffold artifact and tagged images; third-party images pinned by digest; "
    "the Secrets staging and prod need are checked by deploy.yml" % len(services)
)
for p in problems:
    print("    " + p)
sys.exit(1 if problems else 0)
