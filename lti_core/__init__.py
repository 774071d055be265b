"""lti_core: the LTI 1.1 and LTI 1.3 protocol logic of lti-publish, with no web framework in it.

Plain request data goes in; verified launches, redirects and refusals (``LtiError``) come out.
Storage and HTTP are reached through the small Protocols in ``lti_core.store`` and
``lti_core.lti13.jwks``; each host (Open edX, JupyterHub) implements them on its own stack.
"""

__version__ = "0.1.0"
