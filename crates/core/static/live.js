// The dashboard's live part: re-fetched every 2 s and swapped in, so the
// figures move without reloading the page. Without scripts the page shows
// the figures as of its load. When the session has ended the fetch is sent
// to the login page; the whole page then reloads and shows it.
(function () {
  "use strict";
  var region = document.getElementById("live");
  if (!region) { return; }
  var source = region.getAttribute("data-src");
  function refresh() {
    fetch(source, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.redirected || response.status === 401 || response.status === 403) {
          window.location.reload();
          return null;
        }
        return response.ok ? response.text() : null;
      })
      .then(function (html) {
        if (html !== null) {
          region.innerHTML = html;
          region.setAttribute("data-refreshed", String(Date.now()));
        }
      })
      .catch(function () { /* the next tick tries again */ });
  }
  window.setInterval(refresh, 2000);
})();
