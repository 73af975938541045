"""The scratch store: job_temp / dataset_temp files kept by the server (DESIGN.md §3.6).

:mod:`server.scratch.files` stores, finds and removes the files;
``server/api/scratch.py`` is only their HTTP face.
"""
