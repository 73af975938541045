"""The central frazil server: REST API, website, scheduling and provisioning."""
