/* Gridwatch: the charts' plotly.js is loaded once the map is drawn, never ahead of it.
 *
 * Evaluating plotly.js is one long main-thread task (the full bundle: ~0.8 s on the 2-core
 * reference machine); when it landed before the map's layers, the wall's first render waited
 * for it. dcc.Graph loads plotly only when window.Plotly is unset, and otherwise waits on it
 * (`Promise.resolve(window.Plotly || load())`): here it is a thenable that, once a graph asks,
 * waits until the map is drawn (level-2 grids fitted, terminals placed, entity clusters shown)
 * and then adds plotly's basic bundle (scatter, bar, pie: all the charts use; named by
 * <meta name="gw-plotly-js">, preloaded by the page's head, dashboard/bundles.py). The bundle
 * sets window.Plotly to itself. A page without charts (sign-in) never asks, so never loads it.
 */
(function () {
  "use strict";
  if (window.Plotly) return;
  var gw = (window.gridwatch = window.gridwatch || {});
  var MAX_WAIT_MS = 8000;  // a map that never completes (no entities, a failed layer) must not keep the charts away
  var resolvers = [], rejecters = [], asked = false, t0 = Date.now();

  function mapDrawn() {
    return gw.cityFitted && gw.applied > 0 && !!document.querySelector(".gw-cluster");
  }
  function load() {
    var meta = document.querySelector('meta[name="gw-plotly-js"]'), s = document.createElement("script");
    s.src = meta ? meta.content : "";
    s.async = true;
    s.onload = function () { gw.chartsLibAt = performance.now(); resolvers.forEach(function (f) { f(); }); };
    s.onerror = function (e) { rejecters.forEach(function (f) { f(e); }); };
    document.head.appendChild(s);
  }
  function whenMapDrawn() {
    if (mapDrawn() || Date.now() - t0 > MAX_WAIT_MS) {
      gw.mapDrawnAt = performance.now();  // tests and the bench: plotly ran after this
      setTimeout(load, 0);
    } else setTimeout(whenMapDrawn, 50);
  }
  window.Plotly = {
    then: function (resolve, reject) {
      resolvers.push(resolve); rejecters.push(reject);
      if (!asked) { asked = true; whenMapDrawn(); }
    }
  };
})();
