"""Plain-data unit tests of lti_core: no HTTP server, no web framework, a fake clock."""
