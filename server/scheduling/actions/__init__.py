"""Executors of the ``/actions/{action}`` services (reference §4.4), one module each.

``ACTIONS`` maps the action name to its :class:`~server.scheduling.actions.base.Action`
(``prepare`` checks a request up front, ``run`` does the work in the action
worker).
"""
from __future__ import annotations

from server.scheduling.actions import (
    dataset_status, edit_config, job_status, materialization, submit, task_status,
)
from server.scheduling.actions.base import (
    Action, ActionContext, ActionForbidden, ActionInputError, Prepared,
)

ACTIONS: dict[str, Action] = {module.ACTION.name: module.ACTION for module in (
    submit, edit_config, materialization, dataset_status, job_status, task_status)}

__all__ = ["ACTIONS", "Action", "ActionContext", "ActionForbidden", "ActionInputError", "Prepared"]
