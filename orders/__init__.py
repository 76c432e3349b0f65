"""Emergency orders: the duty desk's domain and the dispatcher process.

Interface (the dashboard's order console/board and its HTTP API call these; they never
import ``orders.dispatcher``):

* ``orders.targeting`` (pure): ``resolve_targets(target, registry, positions, now, online_window_s)
  -> list[Recipient]`` for every ``OrderTarget`` kind (all, grids [+adjacent], people/terminals,
  nearest N online, radius).
* ``orders.desk`` (SQL + Redis reads, no MQTT): ``preview(conn, redis, settings, draft) ->
  RecipientPreview``; ``issue(conn, redis, settings, draft, actor, via) -> OrderCreated`` (order,
  its first command and every recipient committed in one transaction, then NOTIFY);
  ``amend(conn, settings, order_id, amendment, actor) -> UUID`` and ``cancel(conn, settings,
  order_id, cancellation, actor) -> UUID`` (new command to the same recipients); ``board(conn,
  limit) -> list[OrderView]`` (active orders with counts); ``order(conn, order_id, recipients=True)
  -> OrderView | None``; ``audit(conn, order_id) -> list[dict]``. ``OrderNotActive`` when an order
  cannot be amended or cancelled.
  Added (no signature changed): ``targeting.UnknownTarget`` (a ValueError) from preview/issue when
  the target names grids, people or terminals the registry lacks; ``desk.NoRecipients`` (a
  ValueError) from issue when the target reaches nobody; ValueError for an empty actor, an
  expiry in the past or an empty amendment. ``via`` defaults to ``"ui"`` (``"api"`` for the HTTP
  API). Writes run in ``conn.transaction()``: committed at once on an autocommit/idle connection,
  else with the caller's transaction (NOTIFY is delivered at that commit). Audit actions are
  ``schemas.orders.AuditAction``.
* ``python -m orders`` runs the dispatcher: publishes queued recipients (signed, one copy per
  terminal on ``cmd/t/{id}``), re-sends to the silent, raises ``order_unacknowledged`` alerts,
  expires, closes and marks arrivals. ``python -m orders keygen`` makes the signing key pair.

Tables: db/migrations/0011_orders.sql. Wire: schemas/commands.py, schemas/signing.py.
"""
