/* Gridwatch orders on the map: served locally from dashboard/assets (no CDN).
 *
 * window.dash_clientside.gwOrders.*: clientside callbacks (registered in dashboard/orders_*.py).
 * - draw(overlay, liveData): each active order's place (pin with its title as text), its radius
 *   (circle) or its grids (outlines), and a ring around each recipient's current position
 *   (gridwatch.position, from the live layer; liveData only says it moved), green once the recipient has arrived. Own panes and layers;
 *   the map's view is never changed and the terminal markers of gridwatch.js are not touched.
 * - pick(value, lat, lon): "pick place" mode: a click on the map sets the console's lat/lon
 *   (dash_clientside.set_props) and the picked place shows as a marker.
 * - targetFields(kind): shows the console's fields for the chosen target.
 * Text from people and terminals goes into the DOM as textContent, never as HTML.
 */
(function () {
  "use strict";
  var go = (window.gwOrders = window.gwOrders || {});
  go.rings = go.rings || {};           // terminal id -> ring marker
  go.recipients = go.recipients || {}; // terminal id -> {arrived, state}
  go.pins = go.pins || {};             // order id -> pin marker (tests/diagnostics)
  go.picking = false;

  var NU = function () { return window.dash_clientside.no_update; };
  var RING_PENDING = {radius: 11, color: "#ff9f43", weight: 2.5, opacity: 0.95, fill: false, dashArray: "4 3"};
  var RING_ARRIVED = {radius: 11, color: "#5ee69a", weight: 3.5, opacity: 1, fill: false, dashArray: null};
  var RING_REFUSED = {radius: 11, color: "#8a94a3", weight: 1.5, opacity: 0.7, fill: false, dashArray: "2 4"};
  var ENDED = {rejected: 1, expired: 1, cancelled: 1};

  function getMap() { return window.gridwatch && window.gridwatch.getMap ? window.gridwatch.getMap() : null; }

  function ensure(map) {
    if (go.map === map) return;
    go.map = map;
    [["gw-order-areas", 630], ["gw-order-rings", 655], ["gw-order-pins", 665]].forEach(function (p) {
      if (!map.getPane(p[0])) { var el = map.createPane(p[0]); el.style.zIndex = p[1]; }
    });
    map.getPane("gw-order-areas").style.pointerEvents = "none";
    map.getPane("gw-order-rings").style.pointerEvents = "none";
    go.ringRenderer = L.canvas({pane: "gw-order-rings", padding: 0.3});
    go.areas = L.layerGroup().addTo(map);
    go.pinLayer = L.layerGroup().addTo(map);
    go.rings = {};
    map.on("click", function (ev) {
      if (!go.picking || !window.dash_clientside || !window.dash_clientside.set_props) return;
      var r = function (v) { return Math.round(v * 1e6) / 1e6; };
      window.dash_clientside.set_props("order-lat", {value: r(ev.latlng.lat)});
      window.dash_clientside.set_props("order-lon", {value: r(ev.latlng.lng)});
    });
  }

  // The level-1/level-2 polygons, fetched once (the browser has them cached from the grid layers).
  var gridIndex = null;
  function grids() {
    if (gridIndex) return gridIndex;
    gridIndex = Promise.all(["1", "2"].map(function (lvl) {
      return fetch("/api/grids.geojson?level=" + lvl).then(function (r) { return r.json(); });
    })).then(function (fcs) {
      var idx = {};
      fcs.forEach(function (fc) { (fc.features || []).forEach(function (f) { idx[f.properties.code] = f; }); });
      return idx;
    }).catch(function () { gridIndex = null; return {}; });
    return gridIndex;
  }

  function label(text) {
    var el = document.createElement("span");
    el.textContent = text;  // a title from a person: text, never HTML
    return el;
  }

  function drawOrders(map, overlay) {
    go.areas.clearLayers();
    go.pinLayer.clearLayers();
    go.pins = {};
    go.recipients = {};
    var wanted = [];
    (overlay || []).forEach(function (o) {
      (o.rec || []).forEach(function (r) {
        var prev = go.recipients[r[0]];
        // A terminal in two orders: arrived/pending of the newest order wins (orders come newest first).
        if (!prev) go.recipients[r[0]] = {state: r[1], arrived: r[2] === 1};
      });
      if (o.lat !== null && o.lat !== undefined && o.lon !== null && o.lon !== undefined) {
        var pin = L.marker([o.lat, o.lon], {
          icon: L.divIcon({html: "", className: "gw-order-pin gw-order-" + (o.priority || "normal"), iconSize: L.point(26, 26)}),
          pane: "gw-order-pins", interactive: false, keyboard: false
        });
        pin.bindTooltip(label(o.title), {permanent: true, direction: "top", offset: [0, -14], className: "gw-order-label"});
        go.pinLayer.addLayer(pin);
        go.pins[o.id] = pin;
        if (o.r) {
          go.areas.addLayer(L.circle([o.lat, o.lon], {radius: o.r, color: "#ff5c5c", weight: 2, opacity: 0.9,
            fillColor: "#ff5c5c", fillOpacity: 0.07, pane: "gw-order-areas", interactive: false}));
        }
        if (o.pr) {
          go.areas.addLayer(L.circle([o.lat, o.lon], {radius: o.pr, color: "#5ee69a", weight: 1.5, opacity: 0.8,
            dashArray: "5 5", fill: false, pane: "gw-order-areas", interactive: false}));
        }
      }
      if (o.grids && o.grids.length) wanted.push(o.grids);
    });
    if (wanted.length) {
      var stamp = go.stamp = (go.stamp || 0) + 1;
      grids().then(function (idx) {
        if (stamp !== go.stamp) return;  // a newer overlay was drawn meanwhile
        wanted.forEach(function (codes) {
          var feats = codes.map(function (c) { return idx[c]; }).filter(Boolean);
          if (!feats.length) return;
          go.areas.addLayer(L.geoJSON({type: "FeatureCollection", features: feats}, {
            style: {color: "#ff9f43", weight: 3, opacity: 0.95, fillColor: "#ff9f43", fillOpacity: 0.08, dashArray: "8 5"},
            pane: "gw-order-areas", interactive: false
          }));
        });
      });
    }
  }

  function drawRings(map) {
    var seen = {}, tid;
    for (tid in go.recipients) {
      var pos = window.gridwatch && window.gridwatch.position ? window.gridwatch.position(tid) : null;
      if (!pos) continue;
      seen[tid] = true;
      var r = go.recipients[tid];
      var style = r.arrived ? RING_ARRIVED : (ENDED[r.state] ? RING_REFUSED : RING_PENDING);
      var ring = go.rings[tid];
      if (!ring) {
        ring = L.circleMarker(pos, Object.assign({renderer: go.ringRenderer, pane: "gw-order-rings", interactive: false}, style));
        ring.addTo(map);
        go.rings[tid] = ring;
      } else {
        var ll = ring.getLatLng();
        if (ll.lat !== pos[0] || ll.lng !== pos[1]) ring.setLatLng(pos);
        ring.setStyle(style);
      }
      ring._gwArrived = r.arrived;
    }
    for (tid in go.rings) {
      if (!seen[tid]) { map.removeLayer(go.rings[tid]); delete go.rings[tid]; }
    }
  }

  go.ringCount = function () { return Object.keys(go.rings).length; };
  go.arrivedCount = function () {
    var n = 0; for (var tid in go.rings) { if (go.rings[tid]._gwArrived) n++; } return n;
  };
  go.pinCount = function () { return Object.keys(go.pins).length; };

  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    gwOrders: {
      draw: function (overlay, liveData) {
        var map = getMap();
        if (!map) return NU();
        ensure(map);
        if (overlay !== go.lastOverlay) { go.lastOverlay = overlay; drawOrders(map, overlay); }
        drawRings(map);
        return NU();
      },
      pick: function (value, lat, lon) {
        var map = getMap();
        go.picking = !!(value && value.indexOf("on") >= 0);
        if (!map) return NU();
        ensure(map);
        map.getContainer().style.cursor = go.picking ? "crosshair" : "";
        var ok = typeof lat === "number" && typeof lon === "number" && isFinite(lat) && isFinite(lon);
        if (!ok) {
          if (go.pickMarker) { map.removeLayer(go.pickMarker); go.pickMarker = null; }
          return NU();
        }
        if (!go.pickMarker) {
          go.pickMarker = L.marker([lat, lon], {
            icon: L.divIcon({html: "", className: "gw-pick-pin", iconSize: L.point(22, 22)}),
            pane: "gw-order-pins", interactive: false, keyboard: false
          }).addTo(map);
        } else {
          go.pickMarker.setLatLng([lat, lon]);
        }
        return NU();
      },
      targetFields: function (kind) {
        var show = {display: "block"}, hide = {display: "none"};
        return ["grids", "people", "nearest", "radius"].map(function (k) { return k === kind ? show : hide; });
      }
    }
  });
})();
