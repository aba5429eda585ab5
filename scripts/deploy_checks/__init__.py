"""Checks of a deployment: the rehearsal on this machine (rehearse), the smoke test of a
deployed site (smoke), and the buyer's path through the API they both walk (flow)."""
