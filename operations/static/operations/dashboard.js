// The dashboard stays current while it is open: every 5 seconds (while the tab is visible) it
// fetches the index again and swaps in the new dashboard, so running imports and campaigns,
// queue depths and failures move without a reload. The figures are the server's, never computed here.
(function () {
  "use strict";
  const PERIOD = 5000;
  function refresh() {
    if (document.hidden) { return setTimeout(refresh, PERIOD); }
    fetch(location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(response => response.ok ? response.text() : Promise.reject(response.status))
      .then(html => {
        const fresh = new DOMParser().parseFromString(html, "text/html").getElementById("operations-dashboard");
        const current = document.getElementById("operations-dashboard");
        if (fresh && current) {
          current.replaceWith(fresh);
          fresh.dataset.refreshedAt = new Date().toISOString();
        }
      })
      .catch(() => {})
      .finally(() => setTimeout(refresh, PERIOD));
  }
  setTimeout(refresh, PERIOD);
})();
