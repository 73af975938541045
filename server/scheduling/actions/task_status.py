"""``task_status``: reset, hard reset or suspend the selected tasks only; their jobs follow by roll-up.

Payload and work are shared with the other status actions
(:mod:`server.scheduling.actions.status_common`).
"""
from server.scheduling.actions.status_common import Scope, make_action

ACTION = make_action("task_status", Scope(jobs=False, dataset=False))
