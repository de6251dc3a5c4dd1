// wadash: small enhancements on top of server-rendered pages. Everything works without it.
//  - times are shown in the reader's local time zone;
//  - regions marked data-live-src follow changes live: the server pushes what changed over
//    Server-Sent Events (/events) and the page fetches the region's fresh markup, rendered by
//    the same template as the page;
//  - the open-alerts banner (and the alerts page) follow `alerts` events only: message
//    regions ignore them, and the banner ignores message changes.
(function () {
  "use strict";

  var fmt = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
  });

  function localTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var d = new Date(el.getAttribute("datetime"));
      if (!isNaN(d)) {
        if (!el.title) { el.title = el.textContent; }
        el.textContent = fmt.format(d);
      }
    });
  }

  // ?theme=dark|light picks a theme and remembers it (a wall screen); ?theme=auto follows the
  // system again.
  function applyTheme() {
    try {
      var q = new URLSearchParams(location.search).get("theme");
      if (q === "dark" || q === "light") { localStorage.setItem("wadash-theme", q); }
      if (q === "auto") { localStorage.removeItem("wadash-theme"); }
      var t = localStorage.getItem("wadash-theme");
      if (t) { document.documentElement.setAttribute("data-theme", t); }
    } catch (_) { /* storage disabled: the system theme applies */ }
  }
  applyTheme();

  function bare(n) { return (n || "").replace(/^whatsapp:/, ""); }

  // Does a change concern this region?
  function concerns(region, changes) {
    var sid = region.getAttribute("data-live-sid");
    var number = region.getAttribute("data-live-number");
    if (!sid && !number) { return true; }
    return changes.some(function (c) {
      return (sid && c.sid === sid) ||
        (number && (bare(c.from) === number || bare(c.to) === number));
    });
  }

  // One fetch per region at a time; changes arriving meanwhile cause one more fetch.
  var state = new Map();
  function refresh(region) {
    var s = state.get(region.id) || { busy: false, again: false };
    state.set(region.id, s);
    if (s.busy) { s.again = true; return; }
    s.busy = true;
    fetch(region.getAttribute("data-live-src"), { credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 303 || r.redirected || !r.ok) { throw new Error("status " + r.status); }
        return r.text();
      })
      .then(function (html) {
        var current = document.getElementById(region.id);
        if (!current) { return; }
        var t = document.createElement("template");
        t.innerHTML = html.trim();
        var fresh = t.content.querySelector("#" + region.id);
        if (fresh) {
          current.replaceWith(fresh);
          localTimes(fresh);
        }
      })
      .catch(function () { /* the next change tries again */ })
      .finally(function () {
        s.busy = false;
        if (s.again) {
          s.again = false;
          var r = document.getElementById(region.id);
          if (r) { setTimeout(function () { refresh(r); }, 150); }
        }
      });
  }

  function setStatus(text, cls) {
    var el = document.getElementById("live-status");
    if (el) { el.textContent = text; el.className = cls; el.hidden = false; }
  }

  function connect() {
    if (!document.querySelector("[data-live-src]") || !window.EventSource) { return; }
    var es = new EventSource("/events");
    es.addEventListener("hello", function (e) {
      setStatus("● live", "live-on");
      // The banner may have been rendered just before an alert changed, and this stream begun
      // just after: the server says which open alerts it knows.
      var version;
      try { version = JSON.parse(e.data).alerts; } catch (_) { return; }
      var banner = document.getElementById("alert-banner");
      if (banner && version && banner.getAttribute("data-alerts-version") !== version) {
        refresh(banner);
      }
    });
    es.addEventListener("open", function () { setStatus("● live", "live-on"); });
    es.addEventListener("error", function () { setStatus("○ reconnecting…", "live-off"); });
    es.addEventListener("messages", function (e) {
      var changes;
      try { changes = JSON.parse(e.data); } catch (_) { return; }
      document.querySelectorAll("[data-live-src]:not([data-live-alerts])").forEach(function (region) {
        if (concerns(region, changes)) { refresh(region); }
      });
    });
    // The overview's hourly figures were recomputed.
    es.addEventListener("stats", function () {
      document.querySelectorAll("[data-live-stats]").forEach(refresh);
    });
    // An alert fired, was acknowledged or resolved.
    es.addEventListener("alerts", function () {
      document.querySelectorAll("[data-live-alerts]").forEach(refresh);
    });
    // The server could not replay what this page missed: the page is stale, start over.
    es.addEventListener("reload", function () { es.close(); location.reload(); });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    connect();
  });
  window.wadash = { localTimes: localTimes };
})();
