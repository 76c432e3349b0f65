/* Gridwatch wall: browser-side functions. Served locally from dashboard/assets (no CDN).
 *
 * - window.dashExtensions.gridwatch.*: grid styles (gwgrids.js draws the grids, gwlive.js restyles
 *   them), entity points and cluster icons (gwentities.js draws them).
 * - window.dash_clientside.gridwatch.*: clientside callbacks. `rotate` is the one place the
 *   view moves (wall mode, by configuration). The live terminals are gwlive.js's.
 */
(function () {
  "use strict";
  var gw = (window.gridwatch = window.gridwatch || {});
  gw.maps = gw.maps || {};
  gw.markers = gw.markers || {};   // terminal id -> marker (gwlive.js)
  gw.config = gw.config || {onlineWindow: 120, staleAfter: 60, strings: {}};

  var RISK_COLOURS = {A: "#4f9d69", B: "#6c8fb3", C: "#d6a243", D: "#e0584f"};
  var PALETTES = {
    officers: ["#0f2a3d", "#1d6fa5", "#35d0ff"],
    inspections: ["#112b24", "#1f8a5b", "#6ef0a8"],
    reports: ["#2e2410", "#b07a1c", "#ffc857"],
    alerts: ["#2d1416", "#b0323a", "#ff6b6b"]
  };

  function str(k) { return (gw.config.strings || {})[k] || k; }

  // ------------------------------------------------------------------ map discovery
  function ensurePanes(map) {
    var panes = [["gw-replay", 640], ["gw-terminals", 650], ["gw-alerts", 660]];
    panes.forEach(function (p) {
      if (!map.getPane(p[0])) { var el = map.createPane(p[0]); el.style.zIndex = p[1]; }
    });
    // The terminals' canvas covers the whole map: let pointer events through to the grid
    // polygons below, and hit-test terminals ourselves (capture phase, see hitTest).
    map.getPane("gw-terminals").style.pointerEvents = "none";
    map.getPane("gw-replay").style.pointerEvents = "none";
    if (!map._gwHit) { map._gwHit = true; installHitTest(map); }
    if (!map._gwTermRenderer) { map._gwTermRenderer = L.canvas({pane: "gw-terminals", padding: 0.3}); }
    if (!map._gwEntityRenderer) { map._gwEntityRenderer = L.canvas({padding: 0.3}); }
  }
  function register(map) {
    var id = (map.getContainer() && map.getContainer().id) || "map";
    gw.maps[id] = map;
    gw.map = map;
    gw.mapCreatedAt = performance.now();  // tests: what was asked for before the map existed
    ensurePanes(map);
    fitCityOnce(map);
    if (gw.attachGrids) gw.attachGrids(map);  // gwgrids.js: the grid polygons
    if (gw.attachEntities) gw.attachEntities(map);  // gwentities.js: the clustered entities
    if (gw.pollNow) map.whenReady(gw.pollNow);  // gwlive.js: the terminals, without waiting for its next tick
    map.whenReady(function () { gw.zoom = map.getZoom(); });
    map.on("zoomend", function () {
      gw.zoom = map.getZoom();
      if (gw.restyleAll) gw.restyleAll();
    });
  }
  function hook() {
    if (gw.hooked) return;
    if (window.L && L.Map && L.CircleMarker) {
      gw.hooked = true;
      L.Map.addInitHook(function () { register(this); });
      defineMarker();
    } else { setTimeout(hook, 5); }
  }
  gw.getMap = function () { return gw.maps["gw-map"] || gw.map || null; };

  // ------------------------------------------------------------------ fit the city (once)
  // The map opens on Settings.city_bbox, which is wider than the city: when the level-2 grids are
  // drawn, fit their extent to the panel, once per page load. Never again (refreshes restyle the
  // grids in place): from then on the view is the operator's. A drag or a
  // wheel before the grids arrive also cancels the fit.
  function fitCityOnce(map) {
    var done = false, timer = null;
    function cancel() { done = true; map.off("layeradd", added); }
    function fit() {
      timer = null;
      if (done) return;
      var b = L.latLngBounds([]);
      map.eachLayer(function (l) {
        var p = l.feature && l.feature.properties;
        if (p && p.level === 2 && l.getBounds) b.extend(l.getBounds());
      });
      if (!b.isValid()) return;
      cancel();
      map.invalidateSize({pan: false});  // the panel may have been laid out after the map was created
      map.fitBounds(b, {animate: false, padding: [6, 6]});
      gw.cityFitted = true;
      gw.cityFitZoom = map.getZoom();  // tests and diagnostics: the zoom the fit chose
    }
    function added(e) {
      var p = e.layer && e.layer.feature && e.layer.feature.properties;
      if (!done && !timer && p && p.level === 2) timer = setTimeout(fit, 0);  // after the whole batch (addData is synchronous)
    }
    map.on("layeradd", added);
    map.once("dragstart", cancel);
    map.getContainer().addEventListener("wheel", cancel, {once: true, passive: true});
  }

  // A canvas circle marker with a heading tick: 1,000 of them redraw in one canvas pass.
  function defineMarker() {
    gw.TerminalMarker = L.CircleMarker.extend({
      options: {heading: -1},
      _updatePath: function () {
        L.CircleMarker.prototype._updatePath.call(this);
        var r = this._renderer, h = this.options.heading;
        if (!r || !r._ctx || h === undefined || h < 0 || !this._point) return;
        var ctx = r._ctx, p = this._point, rad = this._radius, a = h * Math.PI / 180;
        ctx.save();
        ctx.globalAlpha = this.options.fillOpacity;
        ctx.strokeStyle = this.options.fillColor;
        ctx.lineWidth = 2.5;
        ctx.beginPath();
        ctx.moveTo(p.x + Math.sin(a) * (rad + 1), p.y - Math.cos(a) * (rad + 1));
        ctx.lineTo(p.x + Math.sin(a) * (rad + 8), p.y - Math.cos(a) * (rad + 8));
        ctx.stroke();
        ctx.restore();
      }
    });
  }
  hook();

  // ------------------------------------------------------------------ terminals (drawn by gwlive.js)
  // Leaflet sets a string tooltip as HTML: anything from terminals goes in as a text node.
  function textNode(text) {
    var span = document.createElement("span");
    span.textContent = String(text == null ? "" : text);
    return span;
  }
  gw.textNode = textNode;
  // Nearest terminal within a few pixels of a container point, or null.
  function nearest(map, pt) {
    var best = null, bestD = 81, id;  // 9 px
    for (id in gw.markers) {
      var p = map.latLngToContainerPoint(gw.markers[id].getLatLng());
      var dx = p.x - pt.x, dy = p.y - pt.y, d = dx * dx + dy * dy;
      if (d < bestD) { bestD = d; best = id; }
    }
    return best;
  }
  function installHitTest(map) {
    var el = map.getContainer(), tip = null, last = 0;
    function point(ev) { var r = el.getBoundingClientRect(); return L.point(ev.clientX - r.left, ev.clientY - r.top); }
    el.addEventListener("click", function (ev) {
      var id = nearest(map, point(ev));
      if (!id) return;
      ev.stopPropagation(); ev.preventDefault();  // a terminal, not the grid below it
      if (window.dash_clientside && window.dash_clientside.set_props) {
        window.dash_clientside.set_props("term-sel", {data: {id: id, n: Date.now()}});
      }
    }, true);
    el.addEventListener("mousemove", function (ev) {
      var now = performance.now(); if (now - last < 60) return; last = now;
      var id = nearest(map, point(ev));
      if (!id) { if (tip) { map.closeTooltip(tip); tip = null; } el.style.cursor = ""; return; }
      el.style.cursor = "pointer";
      if (!tip) tip = L.tooltip({direction: "top", offset: [0, -8]});
      tip.setLatLng(gw.markers[id].getLatLng()).setContent(gw.tooltipFor(id));
      if (!map.hasLayer(tip)) map.openTooltip(tip);
    }, true);
  }

  // Times in the bureau's zone and language, whatever the browser's own settings.
  function localTime(d, config) {
    try {
      return d.toLocaleString(config.locale || "zh-CN", {timeZone: config.tz || "Asia/Shanghai", hour12: false});
    } catch (e) { return d.toLocaleString(); }
  }

  // ------------------------------------------------------------------ replay
  function replayIndex(data) {
    if (data._idx) return data._idx;
    var per = data.ids.map(function () { return []; });
    data.p.forEach(function (q) { per[q[1]].push(q); });
    data._idx = per;
    return per;
  }
  function upper(arr, t) { // number of points with dt <= t
    var lo = 0, hi = arr.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (arr[mid][0] <= t) lo = mid + 1; else hi = mid; }
    return lo;
  }
  function replayLayer(map) {
    if (!gw.replay) gw.replay = L.layerGroup().addTo(map);
    return gw.replay;
  }

  // ------------------------------------------------------------------ rotation (wall)
  var level1Bounds = null;
  function loadLevel1() {
    if (level1Bounds) return level1Bounds;
    level1Bounds = fetch("/api/grids.geojson?level=1").then(function (r) { return r.json(); }).then(function (fc) {
      return fc.features.map(function (f) { return L.geoJSON(f).getBounds(); });
    });
    return level1Bounds;
  }

  // ------------------------------------------------------------------ layer styles and markers
  window.dashExtensions = Object.assign({}, window.dashExtensions, {
    gridwatch: {
      level2Style: function (feature, context) {
        // gwlive.js keeps the values in gw.gridValues and restyles the existing polygons (gwgrids.js
        // draws them): as a dash-leaflet layer, a new hideout cleared and re-added all 531 (the wall's leak).
        var h = gw.gridValues || (context && context.hideout) || {};
        var v = (h.values || {})[feature.properties.code] || 0;
        var max = h.max || 0, t = max > 0 ? v / max : 0;
        var pal = PALETTES[h.measure] || PALETTES.officers;
        var fill = v > 0 ? (t < 0.5 ? pal[1] : pal[2]) : pal[0];
        return {color: "#3d6f96", weight: 0.7, opacity: 0.75, fillColor: fill,
                fillOpacity: v > 0 ? 0.22 + 0.43 * t : 0.12};
      },
      level1Style: function () {
        return {color: "#9cc3ff", weight: 2.2, opacity: 0.85, fill: false, dashArray: null};
      },
      entityPoint: function (feature, latlng, context) {
        var map = context && context.map;
        var opts = {radius: 3, weight: 0, fillOpacity: 0.8, fillColor: RISK_COLOURS[feature.properties.r] || "#6c8fb3"};
        if (map) { ensurePanes(map); opts.renderer = map._gwEntityRenderer; }
        return L.circleMarker(latlng, opts);
      },
      entityCluster: function (feature, latlng, index, context) {
        var n = feature.properties.point_count;
        var size = Math.round(22 + Math.min(26, Math.log10(n + 1) * 8));
        var label = n >= 10000 ? Math.round(n / 1000) + "k" : n >= 1000 ? (n / 1000).toFixed(1) + "k" : String(n);
        var icon = L.divIcon({html: "<div><span>" + label + "</span></div>", className: "gw-cluster",
                              iconSize: L.point(size, size)});
        return L.marker(latlng, {icon: icon});
      }
    }
  });

  // ------------------------------------------------------------------ clientside callbacks
  var NU = function () { return window.dash_clientside.no_update; };

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    gridwatch: {
      replayTick: function (n, value, data, speed, maxv) {
        if (!data || !data.p || !data.p.length) return NU();
        var next = (value || 0) + (speed || 10) * 0.25;
        if (next > maxv) return NU();
        return next;
      },
      replayPlay: function (n, disabled, data) {
        if (!n || !data || !data.p || !data.p.length) return NU();
        return !disabled;
      },
      // the measure the grids are coloured by: the live layer asks for its values at once
      measure: function (value) {
        gw.measure = null; gw.wantMeasure = value || "officers";
        if (gw.pollNow) gw.pollNow();
        return NU();
      },
      clock: function (n, config) {
        if (config) gw.config = config;  // the live layer (gwlive.js) reads it
        return localTime(new Date(), config || gw.config);
      },
      replayDraw: function (value, data, config) {
        var map = gw.getMap();
        if (!map) return "";
        var layer = replayLayer(map);
        layer.clearLayers();
        if (!data || !data.p || !data.p.length) return "";
        var per = replayIndex(data), t = value || 0;
        per.forEach(function (pts, k) {
          var m = upper(pts, t);
          if (m === 0) return;
          var line = pts.slice(0, m).map(function (q) { return [q[2], q[3]]; });
          layer.addLayer(L.polyline(line, {color: "#ff9f43", weight: 2.5, opacity: 0.9, pane: "gw-replay", interactive: false}));
          var last = line[line.length - 1];
          layer.addLayer(L.circleMarker(last, {radius: 7, color: "#fff", weight: 2, fillColor: "#ff9f43", fillOpacity: 1, pane: "gw-replay"})
                         .bindTooltip(textNode(data.ids[k])));
        });
        return localTime(new Date((data.t0 + t) * 1000), config || gw.config);
      },
      rotate: function (n) {
        var map = gw.getMap();
        if (!map || !n) return NU();
        loadLevel1().then(function (bounds) {
          if (!bounds.length) return;
          map.flyToBounds(bounds[n % bounds.length], {duration: 1.5, padding: [30, 30]});
        });
        return n;
      }
    }
  });
})();
