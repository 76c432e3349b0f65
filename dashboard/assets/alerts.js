/* Gridwatch wall: the alert pins, centring on an alert, and the audible cue (dashboard/alerts_panel.py).
 *
 * - Pins are Leaflet markers in the map's "gw-alerts" pane, drawn from the alert-data store:
 *   severity-coloured, an SOS pulses red and larger. Their tooltips are DOM text nodes, never
 *   HTML: alert titles carry terminal and user text.
 * - Clicking a pin or a located alert in the feed pans the map to it (map.panTo): the
 *   operator's zoom is kept, and no callback ever returns the map.
 * - Operator mode beeps (Web Audio oscillator, nothing downloaded) for a critical alert that
 *   is new or reminded, unless muted (the choice is kept in localStorage).
 *
 * Loaded before gridwatch.js (alphabetical): everything here looks the map up when it runs.
 */
(function () {
  "use strict";
  var A = (window.gwAlerts = window.gwAlerts || {});
  A.markers = {};      // alert id -> marker
  A.seen = {};         // alert id -> {rem, n}: the reminder and count already sounded for
  A.beeps = 0;         // how many cues were played (diagnostics, tests)
  A.lastCue = null;    // id of the alert behind the last cue
  var MUTE_KEY = "gw.alerts.muted";

  function getMap() {
    var gw = window.gridwatch;
    return gw && gw.getMap ? gw.getMap() : null;
  }
  function token(s) { return String(s || "").replace(/[^a-z]/g, ""); }

  // ------------------------------------------------------------------ sound
  A.muted = function () {
    try { return window.localStorage.getItem(MUTE_KEY) === "1"; } catch (e) { return false; }
  };
  function setMuted(m) {
    try { window.localStorage.setItem(MUTE_KEY, m ? "1" : "0"); } catch (e) { /* private mode: session only */ }
    A._muted = m;
  }
  function audio() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    if (!A.ctx) A.ctx = new Ctx();
    if (A.ctx.state === "suspended") { A.ctx.resume(); }
    return A.ctx;
  }
  // Browsers start audio only after a user gesture: the first click anywhere unlocks it.
  document.addEventListener("pointerdown", function () { audio(); }, {once: true, capture: true});

  A.beep = function (sos) {
    A.beeps += 1;
    var ctx = audio();
    if (!ctx) return;
    var pulses = sos ? 3 : 1, t0 = ctx.currentTime + 0.02;
    for (var i = 0; i < pulses; i++) {
      var osc = ctx.createOscillator(), gain = ctx.createGain(), t = t0 + i * 0.28;
      osc.type = "square";
      osc.frequency.setValueAtTime(sos ? 988 : 784, t);
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.25, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.2);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t);
      osc.stop(t + 0.22);
    }
  };

  // A critical alert sounds when it is new, reminded while open, or seen again (a second SOS
  // from the same terminal bumps its count even after someone acknowledged the first).
  function cue(alerts, config) {
    var wall = !!(config && config.wall);
    var sound = null;
    alerts.forEach(function (a) {
      var prev = A.seen[a.id], now = {rem: a.rem || 0, n: a.n || 1};
      A.seen[a.id] = now;
      if (a.sev !== "critical") return;
      var fresh = !prev || (a.state === "open" && now.rem > prev.rem) || now.n > prev.n;
      if (fresh && (a.state === "open" || prev) && (!sound || a.sos)) sound = a;
    });
    if (sound && !wall && !A.muted()) { A.lastCue = sound.id; A.beep(!!sound.sos); }
  }

  // ------------------------------------------------------------------ pins
  function pinIcon(a) {
    var cls = "gw-alert-pin gw-sev-" + token(a.sev) + (a.sos ? " gw-sos" : "") + (a.state === "open" ? "" : " gw-acked");
    var size = a.sos ? 30 : 22;
    return L.divIcon({html: "<div></div>", className: cls, iconSize: L.point(size, size)});
  }
  function tooltipNode(text) {
    var span = document.createElement("span");
    span.textContent = String(text == null ? "" : text);  // text, never markup
    return span;
  }
  A.tooltipNode = tooltipNode;

  function draw(map, alerts) {
    if (!map.getPane("gw-alerts")) { map.createPane("gw-alerts").style.zIndex = 660; }
    var keep = {};
    alerts.forEach(function (a) {
      if (typeof a.lat !== "number" || typeof a.lon !== "number") return;
      keep[a.id] = true;
      var sig = [a.sev, a.sos, a.state, a.title].join("|");
      var m = A.markers[a.id];
      if (m && m._gwSig === sig) return;
      if (m) { map.removeLayer(m); }
      m = L.marker([a.lat, a.lon], {icon: pinIcon(a), pane: "gw-alerts", zIndexOffset: a.sos ? 2000 : 1000,
                                     keyboard: false});
      m._gwSig = sig;
      m._gwId = a.id;
      m.bindTooltip(tooltipNode(a.title), {direction: "top", offset: [0, -12]});
      m.on("click", function () { A.centre(a.lat, a.lon); });
      m.addTo(map);
      A.markers[a.id] = m;
    });
    Object.keys(A.markers).forEach(function (id) {
      if (!keep[id]) { map.removeLayer(A.markers[id]); delete A.markers[id]; }
    });
  }
  A.pinCount = function () { return Object.keys(A.markers).length; };

  // Pan, never zoom: the operator chose the zoom.
  A.centre = function (lat, lon) {
    var map = getMap();
    if (!map || !isFinite(lat) || !isFinite(lon)) return false;
    map.panTo([lat, lon], {animate: false});
    return true;
  };
  document.addEventListener("click", function (ev) {
    var el = ev.target && ev.target.closest ? ev.target.closest(".gw-alert.gw-located") : null;
    if (!el || (ev.target.closest && ev.target.closest("button"))) return;
    A.centre(parseFloat(el.getAttribute("data-lat")), parseFloat(el.getAttribute("data-lon")));
  });

  function applyWhenMapReady(data, config, tries) {
    var map = getMap();
    if (!map) {
      if (tries < 200) setTimeout(function () { applyWhenMapReady(data, config, tries + 1); }, 50);
      return;
    }
    draw(map, data.alerts || []);
  }

  // ------------------------------------------------------------------ clientside callbacks
  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    gwAlerts: {
      apply: function (data, config) {
        if (!data) return window.dash_clientside.no_update;
        A.strings = data.strings || A.strings || {};
        var alerts = data.alerts || [];
        cue(alerts, config);
        applyWhenMapReady(data, config, 0);
        A.applied = (A.applied || 0) + 1;
        return alerts.length;
      },
      toggleMute: function (n, data) {
        var strings = (data && data.strings) || A.strings || {};
        var muted = A.muted();
        var trig = ((window.dash_clientside.callback_context || {}).triggered || []).map(function (t) { return t.prop_id; });
        if (n && trig.indexOf("alert-mute.n_clicks") >= 0) { muted = !muted; setMuted(muted); }
        // Until the first alert data brings the strings, the server-rendered label (in the page's language) stays.
        if (!strings.mute) return window.dash_clientside.no_update;
        return muted ? strings.unmute : strings.mute;
      }
    }
  });
})();
