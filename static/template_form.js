/* wadash: help on the "new template" form (/templates/new). The form works the same without
   this script (the server shows every part, adds rows and renders the preview on "Update
   preview"); with it:
   - only the parts of the chosen type are shown;
   - the preview beside the form follows typing: the form is posted to /templates/preview
     (debounced) and the server's preview, the one the template's page shows, replaces it;
   - "Add another …" adds a row in place instead of posting the form. */
(function () {
  "use strict";

  var DEBOUNCE_MS = 250;

  function start() {
    var form = document.getElementById("template-form");
    var box = document.getElementById("template-preview");
    if (!form || !box) { return; }
    var type = form.querySelector("select[name=type]");

    function showParts() {
      var parts = form.querySelectorAll("[data-types]");
      for (var i = 0; i < parts.length; i++) {
        var types = parts[i].getAttribute("data-types").split(" ");
        parts[i].hidden = types.indexOf(type.value) < 0;
        parts[i].removeAttribute("data-off");
      }
    }

    var timer = null;
    var asked = 0;
    function refresh() {
      var mine = ++asked;
      var body = new URLSearchParams(new FormData(form));
      fetch(box.getAttribute("data-preview-url"), {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: body.toString()
      }).then(function (r) {
        return r.ok ? r.text() : null;
      }).then(function (html) {
        // An older answer arriving late never replaces a newer one.
        if (html !== null && mine === asked) {
          box.innerHTML = html;
          box.setAttribute("data-updated", String(mine));
        }
      }).catch(function () { /* the preview waits for the next change */ });
    }
    function later() {
      if (timer) { clearTimeout(timer); }
      timer = setTimeout(refresh, DEBOUNCE_MS);
    }

    function addRow(button) {
      var section = button.value.replace(/^add-/, "");
      var rows = form.querySelector("[data-rows=" + section + "]");
      var count = form.querySelector("input[name=" + section + "_rows]");
      if (!rows || !count) { return false; }
      var all = rows.children;
      var last = all[all.length - 1];
      if (!last) { return false; }
      var index = all.length;
      var row = last.cloneNode(true);
      var errors = row.querySelectorAll(".field-error");
      for (var e = 0; e < errors.length; e++) { errors[e].parentNode.removeChild(errors[e]); }
      var fields = row.querySelectorAll("input, select");
      for (var i = 0; i < fields.length; i++) {
        var f = fields[i];
        f.name = f.name.replace(/_\d+$/, "_" + index);
        f.id = f.id.replace(/-\d+$/, "-" + index);
        f.removeAttribute("aria-invalid");
        f.removeAttribute("aria-describedby");
        if (f.tagName === "SELECT") { f.selectedIndex = 0; } else { f.value = ""; }
      }
      var labels = row.querySelectorAll("label");
      for (var j = 0; j < labels.length; j++) {
        var target = labels[j].getAttribute("for");
        if (target) { labels[j].setAttribute("for", target.replace(/-\d+$/, "-" + index)); }
      }
      var numbers = row.querySelectorAll(".n");
      for (var k = 0; k < numbers.length; k++) { numbers[k].textContent = String(index + 1); }
      rows.appendChild(row);
      count.value = String(index + 1);
      var max = parseInt(button.getAttribute("data-max") || "10", 10);
      if (index + 1 >= max) { button.hidden = true; }
      var first = row.querySelector("input");
      if (first) { first.focus(); }
      return true;
    }

    form.addEventListener("input", later);
    form.addEventListener("change", function (e) {
      if (e.target === type) { showParts(); }
      later();
    });
    form.addEventListener("click", function (e) {
      var b = e.target.closest ? e.target.closest("button[name=more]") : null;
      if (b && /^add-/.test(b.value) && addRow(b)) { e.preventDefault(); }
    });
    var update = document.getElementById("template-preview-button");
    if (update) { update.hidden = true; }
    showParts();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
