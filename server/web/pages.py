"""The website's route table (one of ``server.app.ROUTE_TABLES``).

It gathers the page groups, serves ``static/`` and starts the admin
history sampler, all through the one ``routes.register(app)`` call that
``create_app`` makes for every route module.
"""
from __future__ import annotations

from aiohttp import web

from server.web import (
    admin_pages, alert_pages, auth_pages, config_pages, dataset_pages, log_pages, plot_pages, production_pages, profile_pages,
    task_pages,
)
from server.web.framework import HERE, PageRoutes, snapshots_ctx
from server.web.history import install

routes = PageRoutes()
for module in (auth_pages, dataset_pages, task_pages, log_pages, plot_pages, config_pages, admin_pages,
               profile_pages, production_pages, alert_pages):
    routes.routes.extend(module.routes.routes)


def _static(app: web.Application) -> None:
    app.router.add_static("/static/", HERE / "static", append_version=False)


routes.on_register.extend([_static, install, lambda app: app.cleanup_ctx.append(snapshots_ctx)])
