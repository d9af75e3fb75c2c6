"""Rendering verdicts: graphs, node maps, the cross-model matrix, JUnit XML, tables and the HTML report."""
