"""Who may use the web (issue 15): users with roles, wall tokens, server-side sessions checked
on every request, rate-limited sign-in with a CSRF token, and an append-only web audit.

    model.py      roles, access levels and audit actions (pure)
    passwords.py  argon2id hashing (argon2-cffi)
    store.py      users, wall tokens and sessions in PostgreSQL (db/migrations/0014_users.sql)
    audit.py      the web audit and the export that unions it with order_audit and alert_action
    ratelimit.py  failed sign-ins counted in Redis per user name and per client address
    startup.py    the refusal to start with a default or short secret off loopback (pure)
    web.py        the Flask side: session lookup, the request gate, sign-in/out, /wall?token=

Operators use ``python -m dashboard.users`` (users and wall tokens) and ``python -m dashboard.audit``.
"""
