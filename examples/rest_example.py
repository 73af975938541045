#!/usr/bin/env python3
"""The IceProd tutorial's "Using the REST API - Example", run against frazil.

Only the address and the token changed: they come from FRAZIL_URL and
FRAZIL_TOKEN (``frazil token create``), and a plain ``RestClient`` replaces
IceProd's ``SavedDeviceGrantAuth`` device-flow login.
"""
import os

from rest_tools.client import RestClient
api = RestClient(
    os.environ.get('FRAZIL_URL', 'http://127.0.0.1:8080'),
    os.environ['FRAZIL_TOKEN'],
)

# get a list of datasets
result = api.request_seq('GET', '/datasets', {'keys': 'dataset|jobs_submitted'})
for dataset_id, metadata in result.items():
    print(metadata)

# for the last dataset, get a list of tasks
result = api.request_seq('GET', f'/datasets/{dataset_id}/tasks', {'keys': 'job_index|name|status'})
log_task_id = None
for task_id, metadata in result.items():
    print(metadata)
    if metadata['status'] == 'complete':
        log_task_id = task_id

# for the last completed task, get the last logs
result = api.request_seq('GET', f'/datasets/{dataset_id}/tasks/{log_task_id}/logs', {'group': True})
for log in result['logs']:
    if log['name'] == 'stdout':
        print(log['data'])
