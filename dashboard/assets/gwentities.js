/* Gridwatch wall: the market entities (70,000 in the demo city), clustered off the main thread.
 *
 * Indexing them with supercluster inside dash-leaflet's clustering GeoJSON layer took 0.25-0.4 s
 * of the main thread, on the first render's path (and the grid polygons were painted after it).
 * Here the page fetches /api/entities.geojson as bytes as soon as this script runs (the head has
 * been preloading it since the first byte of the page) and hands them to a Web Worker
 * (transferred, not copied), which parses and indexes them (supercluster, dashboard/vendor) while
 * the main thread builds the page. On the map's every moveend the worker answers with the
 * clusters and points in view, drawn by the same functions as before (gridwatch.js:
 * entityCluster, a DOM icon with the count; entityPoint, a circle on the entity canvas).
 * A click on a cluster zooms to where it splits. Nothing here is user text: counts and risk letters.
 */
(function () {
  "use strict";
  var gw = (window.gridwatch = window.gridwatch || {});
  var URL_ENTITIES = "/api/entities.geojson";
  var OPTIONS = {radius: 110, maxZoom: 16};  // as the dash-leaflet layer had them
  var state = gw.entities = {ready: false, count: 0, shown: 0, indexMs: null, error: null};
  var worker = null, map = null, layer = null, asked = 0;

  // Runs inside the worker (its source is this function's text after importScripts of supercluster).
  function workerMain() {
    var index = null;
    onmessage = function (e) {
      var m = e.data;
      if (m.type === "load") {
        var t0 = performance.now();
        var features = JSON.parse(new TextDecoder().decode(m.bytes)).features, t1 = performance.now();
        index = new Supercluster(m.options).load(features);
        postMessage({type: "ready", count: features.length, parseMs: t1 - t0, indexMs: performance.now() - t1});
      } else if (m.type === "view" && index) {
        postMessage({type: "view", seq: m.seq, features: index.getClusters(m.bbox, m.zoom)});
      } else if (m.type === "expand" && index) {
        postMessage({type: "expand", zoom: index.getClusterExpansionZoom(m.id), latlng: m.latlng});
      }
    };
  }

  function start() {
    // Only a page whose head preloads the entities may read them (the sign-in page does not).
    var preload = document.querySelector('link[rel="preload"][href="' + URL_ENTITIES + '"]');
    var lib = document.querySelector('meta[name="gw-supercluster-js"]');
    if (!preload || !lib || !window.Worker) return;
    var src = "importScripts(" + JSON.stringify(new URL(lib.content, location.href).href) + ");\n(" + workerMain + ")();";
    worker = new Worker(URL.createObjectURL(new Blob([src], {type: "text/javascript"})));
    worker.onmessage = onMessage;
    worker.onerror = function (e) { state.error = String(e.message || e); console.error("entities worker:", state.error); };
    fetch(URL_ENTITIES, {credentials: "same-origin"}).then(function (r) {
      if (!r.ok) throw new Error("entities " + r.status);
      return r.arrayBuffer();
    }).then(function (bytes) {
      state.bytesAt = performance.now();
      worker.postMessage({type: "load", bytes: bytes, options: OPTIONS}, [bytes]);
    }).catch(function (e) { state.error = String(e); });
  }

  function onMessage(e) {
    var m = e.data;
    if (m.type === "ready") {
      state.ready = true; state.count = m.count; state.parseMs = m.parseMs; state.indexMs = m.indexMs;
      state.readyAt = performance.now();
      askView();
    } else if (m.type === "view" && m.seq === asked) {
      draw(m.features);
    } else if (m.type === "expand" && map) {
      map.setView(m.latlng, m.zoom);
    }
  }

  function askView() {
    if (!state.ready || !map) return;
    var b = map.getBounds().pad(0.1);  // a margin, so clusters at the edge do not pop in on a small pan
    worker.postMessage({type: "view", seq: ++asked, zoom: map.getZoom(),
                        bbox: [b.getWest(), Math.max(-85, b.getSouth()), b.getEast(), Math.min(85, b.getNorth())]});
  }

  function draw(features) {
    var fns = window.dashExtensions.gridwatch, ctx = {map: map};
    layer.clearLayers();
    features.forEach(function (f) {
      var c = f.geometry.coordinates, ll = L.latLng(c[1], c[0]), p = f.properties;
      if (p.cluster) {
        var m = fns.entityCluster(f, ll, null, ctx);
        m.on("click", function () { worker.postMessage({type: "expand", id: p.cluster_id, latlng: [c[1], c[0]]}); });
        layer.addLayer(m);
      } else {
        layer.addLayer(fns.entityPoint(f, ll, ctx));
      }
    });
    state.shown = features.length;
  }

  // gridwatch.js calls this when the map is created.
  gw.attachEntities = function (m) {
    if (map === m || !worker) return;
    map = m;
    layer = L.layerGroup().addTo(map);
    map.on("moveend", askView);
    map.whenReady(askView);
  };

  start();
})();
