"""Compatibility fixes for newer torch / numpy in mmengine, mmdet and mmseg.

Filled in by the foundation work (issue 2).
"""
