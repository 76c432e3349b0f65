/* Gridwatch wall: the grid polygons (531 level-2 fills, 59 level-1 outlines), drawn on the map the
 * moment it exists.
 *
 * As dash-leaflet GeoJSON components they were drawn only after React had mounted them, loaded
 * their script chunk and fetched their data: 0.3-0.7 s after the map itself on the 2-core
 * reference machine. Here the layers' GeoJSON is fetched (from the head's preload) as soon as this
 * script runs and drawn when gridwatch.js reports the map. Same styles (gridwatch.js level2Style /
 * level1Style, restyled in place by gwlive.js), the same hover style, the tooltip the server
 * HTML-escaped (as dash-leaflet bound it), and a click on a level-2 grid sets the `grid-sel`
 * store the details callback reads.
 */
(function () {
  "use strict";
  var gw = (window.gridwatch = window.gridwatch || {});
  var URLS = {2: "/api/grids.geojson?level=2", 1: "/api/grids.geojson?level=1"};
  var HOVER = {weight: 2.5, color: "#ffffff", opacity: 1};
  var data = {}, drawn = {}, map = null;
  gw.grids = {drawnAt: null, error: null};

  function start() {
    [2, 1].forEach(function (level) {
      // Only a page whose head preloads the layers may read them (the sign-in page does not).
      if (!document.querySelector('link[rel="preload"][href="' + URLS[level] + '"]')) return;
      fetch(URLS[level], {credentials: "same-origin"}).then(function (r) {
        if (!r.ok) throw new Error("grids " + level + ": " + r.status);
        return r.json();
      }).then(function (fc) { data[level] = fc; draw(); })
        .catch(function (e) { gw.grids.error = String(e); console.error(gw.grids.error); });
    });
  }

  function onEachLevel2(feature, layer) {
    if (feature.properties.tooltip) layer.bindTooltip(feature.properties.tooltip);
    layer.on("mouseover", function () { layer.setStyle(HOVER); layer.bringToFront(); });
    layer.on("mouseout", function () { layer.setStyle(window.dashExtensions.gridwatch.level2Style(feature)); });
    layer.on("click", function () {
      if (window.dash_clientside && window.dash_clientside.set_props) {
        window.dash_clientside.set_props("grid-sel", {data: {code: feature.properties.code, n: Date.now()}});
      }
    });
  }

  // Level 2 below level 1 (its outlines stay visible over the fills), as the Dash layers were ordered.
  function draw() {
    if (!map) return;
    var fns = window.dashExtensions.gridwatch;
    if (data[2] && !drawn[2]) {
      drawn[2] = L.geoJSON(data[2], {style: fns.level2Style, onEachFeature: onEachLevel2}).addTo(map);
    }
    if (drawn[2] && data[1] && !drawn[1]) {
      drawn[1] = L.geoJSON(data[1], {style: fns.level1Style, interactive: false}).addTo(map);
    }
    if (drawn[2] && drawn[1] && !gw.grids.drawnAt) gw.grids.drawnAt = performance.now();
  }

  // gridwatch.js calls this when the map is created.
  gw.attachGrids = function (m) {
    if (map === m) return;
    map = m;
    map.whenReady(draw);
  };

  start();
})();
