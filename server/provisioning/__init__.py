"""Pilot provisioning: demand from the queue, providers that start pilots (local, HTCondor)."""
