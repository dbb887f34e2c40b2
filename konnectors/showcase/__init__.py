"""The built-in konnectors shown together: ``konnector demo`` and ``konnector report``.

Plugged into the ``konnector`` command through the ``konnector.commands`` entry points, so
the framework never imports the konnectors.
"""
