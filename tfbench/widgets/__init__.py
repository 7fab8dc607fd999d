"""Reusable widgets of the workbench: parameter forms, the layer table, data previews."""
