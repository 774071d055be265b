"""gettext catalogs of lti-publish (domain ``lti_publish``), installed as ``lti_publish_assets.translations``."""
