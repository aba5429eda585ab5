"""The Deploy workflow's smoke test of a freshly rolled-out site, through its public URL.

A new user signs up, lists a ticket, a second user reserves it, and cancels the reservation:
every service's route, the event path from tickets to orders, and the databases are exercised,
and nothing is charged. Exits 1 (with the step that failed) when any step fails.

Usage: python3 -m deploy_checks.smoke https://staging.buytickets.dev   (from scripts/)
"""

import argparse
import sys

from . import flow


def main():
    parser = argparse.ArgumentParser(prog="deploy_checks.smoke", description=__doc__)
    parser.add_argument("base_url")
    parser.add_argument("--insecure", action="store_true", help="accept a self-signed certificate")
    args = parser.parse_args()
    seller = flow.Client(args.base_url, insecure=args.insecure)
    buyer = flow.Client(args.base_url, insecure=args.insecure)
    try:
        status, _, _ = seller.call("GET", "/")
        if status != 200:
            raise flow.FlowError("GET / answered %s" % status)
        flow.log("the home page answers 200")
        flow.api_documentation(seller)
        flow.sign_up(seller, "smoke-seller")
        flow.sign_up(buyer, "smoke-buyer")
        ticket, _ = flow.list_ticket(seller, "Smoke test ticket")
        seller.wait_for("/api/tickets", lambda tickets: any(t["id"] == ticket["id"] for t in tickets), "the ticket in the list")
        flow.log("the ticket is in the list")
        order = flow.reserve(buyer, ticket["id"])
        flow.cancel(buyer, order["id"])
    except (flow.FlowError, OSError) as error:
        print("smoke test failed: %s" % error, file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
