from setuptools import find_packages, setup

setup(
    name="relaykit",
    version="0.1.0",
    description="docker-mailserver compatible relay-host toolkit for Postfix",
    python_requires=">=3.11",
    package_dir={"": "target"},
    packages=find_packages("target"),
    # the Dovecot template (relaykit.edges.dovecot finds it in <prefix>/share/relaykit/dovecot)
    data_files=[("share/relaykit/dovecot", ["target/dovecot/dovecot.conf"])],
    install_requires=["python-dotenv>=1.0", "rich>=13", "watchfiles>=1.0,<2",
                      "idna>=3.4",  # IDNA 2008 / UTS #46, imported only for a name that is not ASCII
                      "psycopg>=3.1",  # PostgreSQL store, imported only when configured; Debian's libpq5
                      "prometheus_client>=0.17",  # METRICS_PORT only (relaykit start)
                      # OAuth2 (XOAUTH2) relays: token flows, imported only when a token is fetched
                      "msal>=1.28", "requests-oauthlib>=1.3"],
    package_data={"relaykit.stores.db": ["*.sql"]},
    extras_require={
        "test": ["pytest>=7", "aiosmtpd>=1.4", "trustme>=1.1", "PyYAML>=6", "hypothesis>=6", "dkimpy>=1.1",
                 "kubernetes-validate>=1.28"],  # Kubernetes' schemas, offline
        "bench": ["matplotlib>=3.5", "aiosmtpd>=1.4", "trustme>=1.1"],
    },
    # `setup` and `relaykit` are one plain script (target/bin/setup, and relaykit a symlink to
    # it), not console_scripts wrappers: they import re and run site.py, ~15 ms of start-up
    scripts=["target/bin/setup", "target/bin/relaykit"],
)
