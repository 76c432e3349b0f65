/* Gridwatch: when the server says this browser's session has ended (signed out elsewhere, the
 * user removed, a new password, the wall token revoked, idle too long), reload the page once:
 * the server then shows the sign-in form (or the wall's "needs a token" page) instead of a
 * page that silently stops updating. Only callback answers of 401 count (a 403 is a signed-in
 * reader asking for more than their role gives, which a reload would not change).
 */
(function () {
  "use strict";
  if (!window.fetch || window.fetch._gwAuth) return;
  var original = window.fetch;
  var reloading = false;
  var wrapped = function (input, init) {
    var url = typeof input === "string" ? input : (input && input.url) || "";
    return original.apply(this, arguments).then(function (resp) {
      if (resp.status === 401 && !reloading && url.indexOf("/_dash-update-component") >= 0) {
        reloading = true;
        window.gwSessionEnded = true;  // tests and diagnostics
        window.location.reload();
      }
      return resp;
    });
  };
  wrapped._gwAuth = true;
  window.fetch = wrapped;
})();
