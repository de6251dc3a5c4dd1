// wadash: small enhancements on top of server-rendered pages. Everything works without it.
// Times are rendered in UTC; show them in the reader's local time with the zone named.
(function () {
  "use strict";
  function localTimes(root) {
    var fmt = new Intl.DateTimeFormat(undefined, {
      year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
    });
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) {
        el.title = el.textContent;
        el.textContent = fmt.format(d);
      }
    });
  }
  document.addEventListener("DOMContentLoaded", function () { localTimes(document); });
  window.wadash = { localTimes: localTimes };
})();
