"""Summarises checkov's JSON report: the counts per framework, every failed check, every check
skipped without a reason (a finding too), and the skips with their reasons.

Usage: checkov_report.py REPORT.json CHECKOV_CONFIG ROOT RENDERED_DIR. Prints the summary line
first; exits 1 on a failed or unexplained check.
"""

import json
import os
import re
import sys
from collections import defaultdict

data = json.load(open(sys.argv[1]))
reports = data if isinstance(data, list) else [data]
root, out_dir = sys.argv[3], sys.argv[4]


def display_path(path):
    """Rendered overlays by name, the repository's files by their path."""
    full = os.path.normpath(os.path.join(root, path.lstrip("/")))
    if full.startswith(os.path.normpath(out_dir) + os.sep):
        return "the rendered overlay " + os.path.basename(full)
    return path.lstrip("/")


failed, lines, skipped, unexplained = [], [], defaultdict(set), []
for report in reports:
    kind = report.get("check_type", "?")
    results = report.get("results", {})
    summary = report.get("summary", {})
    lines.append(
        "%s %d passed, %d failed, %d skipped"
        % (kind, summary.get("passed", 0), summary.get("failed", 0), summary.get("skipped", 0))
    )
    for check in results.get("failed_checks", []):
        failed.append(
            "    FAILED %s %s (%s) in %s"
            % (
                check["check_id"],
                check.get("resource", "?"),
                check.get("check_name", ""),
                display_path(check.get("file_path", "?")),
            )
        )
    for check in results.get("skipped_checks", []):
        reason = ((check.get("check_result") or {}).get("suppress_comment") or "").strip()
        # checkov's own text when a skip annotation or comment gives no reason.
        if reason in ("", "No comment provided"):
            unexplained.append(
                "    SKIPPED WITHOUT A REASON %s %s in %s"
                % (check["check_id"], check.get("resource", "?"), display_path(check.get("file_path", "?")))
            )
        resource = check.get("resource", "?")
        if kind == "kubernetes":
            # Kind.namespace.name: the same resource appears once per overlay.
            parts = resource.split(".")
            resource = "%s %s" % (parts[0], parts[-1])
        else:
            resource = resource.rstrip(".")
        skipped[(check["check_id"], reason.strip())].add(resource)

print("; ".join(lines))
for line in failed + unexplained:
    print(line)
if skipped:
    print("    skipped in the files, with their reasons:")
    for (check_id, reason), resources in sorted(skipped.items()):
        print("      %s on %s: %s" % (check_id, ", ".join(sorted(resources)), reason))
print("    skipped for the whole project (infra/checkov.yaml):")
for raw in open(sys.argv[2]):
    m = re.match(r"\s*-\s*(CKV\w+)\s*#\s*(.*)", raw)
    if m:
        print("      %s: %s" % (m.group(1), m.group(2)))
sys.exit(1 if failed or unexplained else 0)
