"""``dataset_status``: reset, hard reset or suspend the dataset, all its jobs and tasks (or the selected ones).

Payload and work are shared with the other status actions
(:mod:`server.scheduling.actions.status_common`).
"""
from server.scheduling.actions.status_common import Scope, make_action

ACTION = make_action("dataset_status", Scope(jobs=True, dataset=True))
