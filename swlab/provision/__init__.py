"""Provisioning: the lab's AWS stack created, updated and deleted with boto3 (see deploy.py)."""
