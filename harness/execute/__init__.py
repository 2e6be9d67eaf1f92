"""Executing a spec: planning work items and running the studies into the store."""
