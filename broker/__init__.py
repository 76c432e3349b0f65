"""The broker's accounts: who may connect to Mosquitto, as whom, and to which topics.

Mosquitto runs the dynamic-security plugin (deploy/mosquitto/gridwatch.conf). This package
builds its configuration and its control commands (``accounts``: pure), keeps the platform's
passwords (``secrets``), talks to the running broker (``control``: ``$CONTROL/dynamic-security/v1``
with the admin account), renders the broker configuration and TLS files (``conf``, ``tls``), and is
the operator's command: ``python -m broker terminal add|rotate|revoke|list ID``. ``provision``
gives the simulator's terminals accounts; ``dev`` gives tests and benches the development account.
"""
