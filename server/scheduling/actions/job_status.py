"""``job_status``: reset, hard reset or suspend the selected jobs (all when none is given) and their tasks.

Payload and work are shared with the other status actions
(:mod:`server.scheduling.actions.status_common`).
"""
from server.scheduling.actions.status_common import Scope, make_action

ACTION = make_action("job_status", Scope(jobs=True, dataset=False))
