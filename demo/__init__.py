"""The demo (`make demo`, `python -m demo`): the XBlock SDK workbench serving lti_xblock, a local launch
page acting as the LTI platform, and a real JupyterHub with jupyter_lti's authenticator beside it.

Checkout-only: setup.py ships lti_core, lti_xblock and jupyter_lti, never this package. The tests use its
settings (tests/settings.py) and its hub machinery (demo/hubprocess.py, through tests/hub.py).

    settings.py, urls.py   the workbench project (DJANGO_SETTINGS_MODULE=demo.settings)
    platform.py            the local launch page: an LTI 1.1 consumer and LTI 1.3 platform
    prepare.py             registers that platform with the tool, and what `make demo` prints
    hub.py                 starts the demo JupyterHub beside the workbench
    demohub.py             that JupyterHub: its config, welcome notebook and Moodle instructions
    hubprocess.py          a JupyterHub as a child process (shared with the tests' hub)
    __main__.py            `python -m demo`, and `python -m demo lti-publish COMMAND ...`
"""
