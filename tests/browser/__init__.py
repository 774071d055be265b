"""Real Chromium against the hosts: launches framed by a platform on another site, over HTTPS."""
