"""Stored storage credentials (IceProd's credentials service): encryption, the
service the API and loops use, the refresh loop and per-attempt tokens."""
