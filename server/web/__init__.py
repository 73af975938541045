"""The website and admin dashboard, served by the same aiohttp server.

Server-rendered jinja2 pages (autoescape on) at IceProd's paths, a signed
session cookie, CSRF tokens on every form, a strict Content-Security-Policy,
server-side SVG plots and a small local script for live updates.
``server.web.pages.routes`` is what ``create_app`` registers.
"""
