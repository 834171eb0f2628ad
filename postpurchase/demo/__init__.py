"""The embedded demo behind ``make run``: a realistic sample feed and its replay over HTTP."""
