// wadash: small enhancements on top of server-rendered pages. Everything works without it.
//  - regions marked data-live-src follow changes live: the server pushes what changed over
//    Server-Sent Events (/events) and the page fetches the region's fresh markup, rendered by
//    the same template as the page;
//  - the open-alerts banner (and the alerts page) follow `alerts` events only: message
//    regions ignore them, and the banner ignores message changes; the hand-off queue (and a
//    conversation's bot state) follow `handoffs` events too (data-live-handoffs);
//  - one stream per browser, not per tab: the tabs elect a leader with the Web Locks API
//    (lock "wadash-live", held for as long as the leader leads); only the leader opens
//    /events, and it passes every event on to the other tabs over a BroadcastChannel
//    ("wadash-live"), which apply it exactly as if they had received it. Every tab remembers
//    the last event id it saw; a tab that takes over resumes from there (/events?last=…), so
//    nothing is missed or repeated across the handover. A page being left (pagehide, which
//    includes going into the back/forward cache) closes its stream and gives up leadership;
//    back from the cache (pageshow), it joins again. Without Web Locks or BroadcastChannel,
//    each tab has its own stream, with the same pagehide/pageshow behaviour.
(function () {
  "use strict";

  var NAME = "wadash-live";

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
  // A <details> the reader opened (the alert summary, a filter box) stays open when its
  // region is replaced: matched by id, else by position among the region's <details>.
  function keepOpen(current, fresh) {
    var before = current.querySelectorAll("details");
    var after = fresh.querySelectorAll("details");
    before.forEach(function (d, i) {
      if (!d.open) { return; }
      var twin = (d.id && fresh.querySelector("details#" + d.id)) || after[i];
      if (twin) { twin.open = true; }
    });
  }

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
          keepOpen(current, fresh);
          current.replaceWith(fresh);
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

  function setStatus(on) {
    live.on = on;
    var el = document.getElementById("live-status");
    if (el) {
      el.textContent = on ? "● live" : "○ reconnecting…";
      el.className = on ? "live-on" : "live-off";
      el.hidden = false;
    }
  }

  // Event ids are log positions "<xid>.<id>", ordered as pairs of unbounded integers.
  function cmpNum(a, b) {
    if (a.length !== b.length) { return a.length < b.length ? -1 : 1; }
    return a < b ? -1 : (a > b ? 1 : 0);
  }
  function cmpId(a, b) {
    var x = String(a).split("."), y = String(b).split(".");
    return cmpNum(x[0], y[0]) || cmpNum(x[1] || "0", y[1] || "0");
  }
  function newer(id) { return !!id && (live.lastId === null || cmpId(id, live.lastId) > 0); }

  var live = {
    mode: "none",     // "shared" (one stream per browser), "solo" (one per tab) or "none"
    leader: false,    // this tab holds the browser's stream
    lastId: null,     // the last event id this tab saw (from its stream or the channel)
    on: false,        // the browser's stream is connected
    ids: [],          // ids of the events this tab applied, oldest first (the last 1,000)
    streams: 0,       // streams this tab has opened
    es: null,
    channel: null,
    release: null,    // gives the lock up (leader) or stops waiting for it (follower)
    joined: false,
    gen: 0,           // which join a lock request belongs to
    adopt: false      // take the leader's position at its next status (back from the cache)
  };

  var handlers = {
    hello: function (data) {
      setStatus(true);
      // The banner may have been rendered just before an alert changed, and this stream begun
      // just after: the server says which open alerts it knows.
      var version;
      try { version = JSON.parse(data).alerts; } catch (_) { return; }
      var banner = document.getElementById("alert-banner");
      if (banner && version && banner.getAttribute("data-alerts-version") !== version) {
        refresh(banner);
      }
    },
    messages: function (data) {
      var changes;
      try { changes = JSON.parse(data); } catch (_) { return; }
      document.querySelectorAll("[data-live-src]:not([data-live-alerts])").forEach(function (region) {
        if (concerns(region, changes)) { refresh(region); }
      });
    },
    // The overview's hourly figures were recomputed.
    stats: function () {
      document.querySelectorAll("[data-live-stats]").forEach(refresh);
    },
    // An alert fired, was acknowledged or resolved.
    alerts: function () {
      document.querySelectorAll("[data-live-alerts]").forEach(refresh);
    },
    // A conversation entered or left the "needs a human" queue.
    handoffs: function () {
      document.querySelectorAll("[data-live-handoffs]").forEach(refresh);
    },
    // The server could not replay what was missed: the page is stale, start over.
    reload: function () {
      leave();
      location.reload();
    }
  };

  // Applies one event, from this tab's stream or passed on by the leader. Returns whether it
  // was new to this tab.
  function apply(type, data, id) {
    if (type === "hello") {
      // The position the stream delivers everything after: a tab taking over resumes there.
      if (newer(id)) { live.lastId = id; }
      handlers.hello(data);
      return true;
    }
    if (id) {
      if (!newer(id)) { return false; } // already seen (a new leader replays from its own point)
      live.lastId = id;
      live.ids.push(id);
      if (live.ids.length > 1000) { live.ids.shift(); }
    }
    if (handlers[type]) { handlers[type](data); }
    return true;
  }

  function post(msg) {
    if (live.channel) { try { live.channel.postMessage(msg); } catch (_) { /* closed */ } }
  }

  function openStream() {
    closeStream();
    live.streams += 1;
    var es = new EventSource("/events" + (live.lastId ? "?last=" + encodeURIComponent(live.lastId) : ""));
    live.es = es;
    var relay = function (e) {
      if (live.es !== es) { return; }
      if (e.type === "reload") {
        // Every tab of the browser is as stale as this one. (`reload` has no id of its own:
        // lastEventId would repeat the previous event's.)
        post({ type: "reload", data: e.data, id: null });
        apply("reload", e.data, null);
        return;
      }
      var id = e.lastEventId || null;
      if (apply(e.type, e.data, id)) { post({ type: e.type, data: e.data, id: id }); }
      if (e.type === "hello") { post({ type: "status", on: true, lastId: live.lastId }); }
    };
    ["hello", "messages", "stats", "alerts", "handoffs", "reload"].forEach(function (t) {
      es.addEventListener(t, relay);
    });
    es.addEventListener("open", function () {
      if (live.es !== es) { return; }
      setStatus(true);
      post({ type: "status", on: true, lastId: live.lastId });
    });
    es.addEventListener("error", function () {
      if (live.es !== es) { return; }
      setStatus(false);
      post({ type: "status", on: false, lastId: live.lastId });
    });
  }

  function closeStream() {
    if (live.es) { live.es.close(); live.es = null; }
  }

  // Messages from the other tabs of this browser.
  function onMessage(e) {
    var m = e.data || {};
    if (m.type === "hi") {
      // A tab joined: the leader tells it how the stream is and where it is.
      if (live.leader) { post({ type: "status", on: live.on, lastId: live.lastId }); }
    } else if (m.type === "status") {
      if (live.leader) { return; }
      // A tab that has seen nothing yet, or that is back from the back/forward cache (and has
      // fetched its regions afresh), starts where the stream is.
      if ((live.lastId === null || live.adopt) && newer(m.lastId)) { live.lastId = m.lastId; }
      live.adopt = false;
      setStatus(!!m.on);
    } else if (m.type === "bye") {
      if (!live.leader) { setStatus(false); }
    } else if (!live.leader && typeof m.type === "string" && handlers[m.type]) {
      apply(m.type, m.data, m.id || null);
    }
  }

  function lead() {
    live.leader = true;
    live.adopt = false;
    openStream();
  }

  function join() {
    if (live.joined || !document.querySelector("[data-live-src]") || !window.EventSource) { return; }
    live.joined = true;
    if (live.mode === "solo") { openStream(); return; }
    live.channel = new BroadcastChannel(NAME);
    live.channel.onmessage = onMessage;
    var abort = window.AbortController ? new AbortController() : null;
    var held = null;
    live.release = function () {
      if (held) { held(); } else if (abort) { abort.abort(); }
    };
    var options = abort ? { signal: abort.signal } : {};
    var gen = ++live.gen;
    navigator.locks.request(NAME, options, function () {
      // Granted after this page was left (and perhaps joined again): not for this visit.
      if (!live.joined || gen !== live.gen) { return null; }
      return new Promise(function (resolve) {
        held = resolve;
        lead();
      });
    }).catch(function () { /* stopped waiting: this page was left */ });
    post({ type: "hi" });
  }

  function leave() {
    if (!live.joined) { return; }
    live.joined = false;
    closeStream();
    if (live.leader) {
      live.leader = false;
      post({ type: "bye" });
    }
    if (live.release) { live.release(); live.release = null; }
    if (live.channel) { live.channel.close(); live.channel = null; }
  }

  live.mode = !window.EventSource ? "none"
    : (navigator.locks && navigator.locks.request && window.BroadcastChannel ? "shared" : "solo");

  document.addEventListener("DOMContentLoaded", join);
  // Leaving the page (closing the tab, following a link, or going into the back/forward
  // cache): no connection stays open behind it, and another tab takes the stream over.
  window.addEventListener("pagehide", leave);
  window.addEventListener("pageshow", function (e) {
    if (!e.persisted) { return; }
    // Back from the back/forward cache: what changed meanwhile reached the other tabs, not
    // this one, so as a follower it fetches its regions afresh; as the leader it resumes from
    // its last id (the fetches are then merely early).
    live.adopt = true;
    join();
    document.querySelectorAll("[data-live-src]").forEach(refresh);
  });

  window.wadash = {
    live: function () {
      return {
        mode: live.mode, leader: live.leader, lastId: live.lastId, on: live.on,
        ids: live.ids.slice(), streams: live.streams, joined: live.joined
      };
    }
  };
})();
