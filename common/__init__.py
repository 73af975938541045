"""Code shared by the server and the pilot.

Rule of the room: nothing here imports ``server`` or ``pilot``.
"""
