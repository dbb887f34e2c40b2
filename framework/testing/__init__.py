"""Testing kit for konnector authors: test servers, stores and a CLI runner.

Installed as a pytest plugin (entry point ``pytest11``), so its fixtures are
available in any test suite of an environment where ``konnectors`` is installed.
"""
