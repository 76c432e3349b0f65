/* Gridwatch wall: the live terminals layer (loaded after gridwatch.js, which finds the map).
 *
 * A short poll of GET /api/live (dashboard/live_delta.py): the browser sends the snapshot id it
 * has and gets 204 (nothing new), a delta (only the terminals that changed, removals, counters,
 * grid values when they changed) or, when it is unknown or too far behind, the full snapshot.
 * The existing canvas markers are moved and restyled in place: a refresh changes data, never
 * the map's view, and no marker is re-created. The level-2 polygons are restyled in place and the
 * counters set with dash_clientside.set_props: no payload passes through Dash's store.
 *
 * One request at a time (the next is scheduled when the last one ended), so a slow server
 * never stacks requests; nothing is kept per refresh beyond the current rows.
 */
(function () {
  "use strict";
  var gw = (window.gridwatch = window.gridwatch || {});
  gw.markers = gw.markers || {};   // terminal id -> marker
  gw.rows = gw.rows || {};         // terminal id -> {y, x (1e-5 degree), f, s (fix/seen, server epoch s), r, h, o}
  gw.ids = [];                     // the snapshot's sorted ids: a delta's indexes point into it
  gw.sid = null;                   // the snapshot this screen has
  gw.gh = "";                      // hash of the grid values on screen (with their measure)
  gw.skew = 0;                     // server clock - client clock (s)
  gw.received = 0;
  gw.applyMs = [];                 // recent apply durations (bench/diagnostics), bounded
  gw.live = {polls: 0, full: 0, deltas: 0, unchanged: 0, errors: 0};

  var E5 = 100000;
  var ROLE_COLOURS = {"1": "#ffc857", "2": "#35d0ff", "c": "#b794f6", "i": "#5ee69a", "?": "#e0e6ee"};
  var ROLE_KEYS = {"1": "role.level1_supervisor", "2": "role.level2_supervisor", "c": "role.co_manager", "i": "role.informant", "?": "role.unknown"};
  var COUNTERS = ["inspections_today", "inspections_year", "reports_year", "leads_verified", "cases_filed",
                  "police_transfers", "penalty_decisions", "mediation_rate_pct"];

  function serverNow() { return Date.now() / 1000 + gw.skew; }
  function str(k) { return ((gw.config || {}).strings || {})[k] || k; }
  function cfg() { return gw.config || {onlineWindow: 120, staleAfter: 60}; }

  // Marker size follows the zoom: a city-wide view of 1,000 officers stays readable.
  function sizes() {
    var z = gw.zoom || 10;
    return z <= 10 ? {r: 3.2, head: false} : z <= 12 ? {r: 4.5, head: true} : {r: 6.5, head: true};
  }
  function isOffline(row, now) { return row.o === 1 || now - row.s > cfg().onlineWindow; }
  function styleFor(row, now) {
    var sz = sizes(), c = cfg();
    if (isOffline(row, now)) {
      return {radius: sz.r, color: "#8a94a3", weight: 1.5, opacity: 0.85, fillColor: "#8a94a3", fillOpacity: 0.0, heading: -1};
    }
    var fixAge = now - row.f, op = 1;
    if (fixAge > c.staleAfter) op = Math.max(0.3, 1 - (fixAge - c.staleAfter) / Math.max(1, c.onlineWindow));
    return {radius: sz.r, color: "#06101a", weight: sz.r > 4 ? 1.2 : 0.6, opacity: op,
            fillColor: ROLE_COLOURS[row.r] || ROLE_COLOURS["?"], fillOpacity: op, heading: sz.head ? row.h : -1};
  }
  function statusWord(row, now) {
    if (isOffline(row, now)) return str("status.offline");
    if (now - row.f > cfg().staleAfter) return str("status.stale");
    return str("status.online");
  }
  gw.tooltipFor = function (id) {
    var row = gw.rows[id];
    if (!row) return gw.textNode(id);
    return gw.textNode(id + " · " + str(ROLE_KEYS[row.r] || "role.unknown") + " · " + statusWord(row, serverNow()));
  };
  gw.position = function (id) {
    var row = gw.rows[id];
    return row ? [row.y / E5, row.x / E5] : null;
  };
  gw.restyleAll = function () {
    var now = serverNow();
    for (var id in gw.markers) { var row = gw.rows[id]; if (row) gw.markers[id].setStyle(styleFor(row, now)); }
  };

  // ------------------------------------------------------------------ one marker
  function place(map, id, now) {
    var row = gw.rows[id], m = gw.markers[id], st = styleFor(row, now), ll = [row.y / E5, row.x / E5];
    if (!m) {
      st.renderer = map._gwTermRenderer; st.pane = "gw-terminals"; st.interactive = false;
      m = new gw.TerminalMarker(ll, st);
      m.addTo(map);
      gw.markers[id] = m;
    } else {
      var cur = m.getLatLng();
      if (cur.lat !== ll[0] || cur.lng !== ll[1]) m.setLatLng(ll);
      m.setStyle(st);
    }
  }
  function drop(map, id) {
    if (gw.markers[id]) map.removeLayer(gw.markers[id]);
    delete gw.markers[id];
    delete gw.rows[id];
  }
  function rowOf(a, k) { return {y: a[k], x: a[k + 1], f: a[k + 2], s: a[k + 3], r: a[k + 4], h: a[k + 5], o: a[k + 6]}; }

  // ------------------------------------------------------------------ payloads
  function applyFull(map, full, now) {
    var keep = {}, i;
    for (i = 0; i < full.ids.length; i++) {
      gw.rows[full.ids[i]] = rowOf(full.r[i], 0);
      keep[full.ids[i]] = true;
      place(map, full.ids[i], now);
    }
    for (var id in gw.markers) { if (!keep[id]) drop(map, id); }
    for (id in gw.rows) { if (!keep[id]) delete gw.rows[id]; }
    gw.ids = full.ids;
  }
  // Returns false when the delta does not fit what this screen has (then it asks for the full snapshot).
  function applyDelta(map, d, now, at) {
    var idx = -1, k, id, row;
    for (k = 0; k < d.i.length; k++) {
      idx += d.i[k];
      id = gw.ids[idx]; row = id !== undefined && gw.rows[id];
      if (!row) return false;
      row.y += d.dy[k]; row.x += d.dx[k]; row.f = at - d.fa[k]; row.s = at - d.sa[k]; row.h = d.h[k]; row.o = d.o[k];
      place(map, id, now);
    }
    for (k = 0; k < d.x.length; k++) drop(map, d.x[k]);
    for (k = 0; k < d.a.length; k++) {
      id = d.a[k][0];
      gw.rows[id] = rowOf(d.a[k], 1);
      place(map, id, now);
    }
    if (d.ids) gw.ids = d.ids;
    return gw.ids.length === Object.keys(gw.rows).length;
  }
  function onlineCount(now) {
    var n = 0;
    for (var id in gw.rows) { if (!isOffline(gw.rows[id], now)) n++; }
    return n;
  }
  function fmt(v, pct) {
    if (v === null || v === undefined) return "—";
    if (pct) return (Math.round(v * 10) / 10).toLocaleString() + "%";
    return Number(v).toLocaleString();
  }
  function setProps(id, props) {
    if (window.dash_clientside && window.dash_clientside.set_props) window.dash_clientside.set_props(id, props);
  }
  function showCounters(c, now) {
    var text = fmt(onlineCount(now)) + " / " + fmt(Math.max(c.total || 0, gw.ids.length));
    var el = document.getElementById("ctr-online");
    if (el && el.textContent !== text) setProps("ctr-online", {children: text});
    COUNTERS.forEach(function (k) {
      var v = fmt(c[k], k === "mediation_rate_pct"), e = document.getElementById("ctr-" + k);
      if (e && e.textContent !== v) setProps("ctr-" + k, {children: v});
    });
  }
  // The level-2 polygons are restyled in place, never through the layer's hideout (see level2Style).
  function restyleGrids(map) {
    var style = window.dashExtensions.gridwatch.level2Style;
    map.eachLayer(function (l) {
      var f = l.feature;
      if (f && f.properties && f.properties.level === 2 && l.setStyle) l.setStyle(style(f));
    });
  }
  gw.applyPayload = function (map, p) {
    var t0 = performance.now();
    gw.skew = p.now - Date.now() / 1000;
    gw.received = Date.now() / 1000;
    var now = p.now;
    if (p.full) { applyFull(map, p.full, now); gw.live.full++; }
    else if (p.d) {
      if (p.b !== gw.sid || !applyDelta(map, p.d, now, p.now)) { gw.sid = null; return false; }
      gw.live.deltas++;
    }
    gw.sid = p.s;
    if (p.g) {
      gw.gh = p.gh;
      gw.gridValues = {measure: p.m, values: p.g, max: p.gmax || 0};
      restyleGrids(map);
    }
    showCounters(p.c || {}, now);
    var dt = performance.now() - t0;
    gw.applyMs.push(dt); if (gw.applyMs.length > 600) gw.applyMs.shift();
    gw.applied = (gw.applied || 0) + 1;
    setProps("live-data", {data: p.s});  // a small tick for the orders overlay's rings
    return true;
  };

  // ------------------------------------------------------------------ the poll
  // One chain of polls: pollNow (a new measure, the map created) cuts the wait short without starting a second chain.
  var waiting = null, busy = false;
  function schedule(ms) { clearTimeout(waiting); waiting = setTimeout(poll, ms); }
  gw.pollNow = function () { if (!busy) schedule(0); };
  // The first full snapshot is asked for as soon as this script runs, on a page that may show the map
  // (its head preloads the map layers): React creates the map a good while later, and the snapshot
  // is drawn then, instead of being asked for only then.
  var early = document.querySelector('link[rel="preload"][href="/api/entities.geojson"]') ?
    fetch("/api/live?m=officers", {credentials: "same-origin", cache: "no-store"}).then(function (r) {
      return r.status === 200 ? r.json() : null;
    }).catch(function () { return null; }) : null;
  function poll() {
    waiting = null;
    var map = gw.getMap && gw.getMap();
    var wait = (gw.config && gw.config.pollMs) || 250;
    if (!map || !map._gwTermRenderer || !document.getElementById("gw-map")) { schedule(wait); return; }
    if (early) {
      var first = early;
      early = null; busy = true; gw.live.polls++;
      first.then(function (p) {
        if (p && p.m === (gw.wantMeasure || "officers")) { gw.measure = p.m; gw.applyPayload(map, p); }
      }).catch(function () { gw.live.errors++; }).then(function () { busy = false; schedule(0); });
      return;
    }
    var m = gw.wantMeasure || "officers";
    busy = true;
    if (m !== gw.measure) { gw.measure = m; gw.gh = ""; }
    var ctl = new AbortController(), timer = setTimeout(function () { ctl.abort(); }, 10000);
    var url = "/api/live?m=" + encodeURIComponent(m) + (gw.sid ? "&s=" + encodeURIComponent(gw.sid) : "") +
              (gw.gh ? "&gh=" + encodeURIComponent(gw.gh) : "");
    gw.live.polls++;
    fetch(url, {credentials: "same-origin", cache: "no-store", signal: ctl.signal}).then(function (r) {
      if (r.status === 204) { gw.live.unchanged++; return null; }
      if (!r.ok) throw new Error("live " + r.status);
      return r.json();
    }).then(function (p) {
      if (p) gw.applyPayload(map, p);
    }).catch(function () {
      gw.live.errors++; wait = 5000;  // signed out, server restarting: try again calmly
    }).then(function () { clearTimeout(timer); busy = false; schedule(wait); });
  }
  // Between payloads positions age: re-style every few seconds so stale ones fade and silent ones go grey on time.
  setInterval(function () {
    if (gw.received && Date.now() / 1000 - gw.received >= 3) gw.restyleAll();
  }, 5000);
  if (!gw.polling) { gw.polling = true; schedule(0); }
  gw.terminalCount = function () { return Object.keys(gw.markers).length; };
})();
