"""lti-publish's JupyterHub host: LTI 1.1 and 1.3 authenticators on lti_core."""
