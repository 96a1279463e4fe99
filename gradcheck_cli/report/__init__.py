"""Report formats for machines and other tools: JSON suites, GitHub annotations, JUnit XML, plain
text (for assertion messages) and the multi-config summary. Nothing here prints or computes."""
