"""Serverless Workflow Lab: measure a serverless image pipeline on AWS or on an embedded local cloud."""

__version__ = "0.1.0"
