/* wadash forms: help that the server does not need. Every rule here is also enforced by the
   server; without this script the forms work the same, only with less help.
   - a live "123 / 1600" counter under each field with a maxlength (textareas, and inputs
     marked data-count), counting as the browser's maxlength and Twilio do (UTF-16 units);
   - the two-step confirmations (details.confirm): opening one focuses its button, Escape
     closes it;
   - template variables as rows: an "Add a variable" button adds a row;
   - the broadcast preview's variable mapping (select[data-refresh]): choosing a CSV column
     refreshes the preview at once, choosing "the same value for everyone" moves to its
     field (then "Update the preview", as without this script). */
(function () {
  "use strict";

  function counterFor(field) {
    var max = parseInt(field.getAttribute("maxlength"), 10);
    if (!(max > 0)) { return; }
    var out = document.createElement("span");
    out.className = "counter";
    out.id = (field.id || field.name) + "-count";
    out.setAttribute("aria-live", "polite");
    var described = field.getAttribute("aria-describedby");
    field.setAttribute("aria-describedby", described ? described + " " + out.id : out.id);
    function update() {
      var n = field.value.length;
      out.textContent = n + " / " + max;
      out.className = "counter" + (n > max ? " over" : (n >= max * 0.9 ? " near" : ""));
    }
    field.parentNode.insertBefore(out, field.nextSibling);
    field.addEventListener("input", update);
    update();
  }

  function confirmFor(details) {
    details.addEventListener("toggle", function () {
      if (!details.open) { return; }
      var button = details.querySelector(".confirm-box button");
      if (button) { button.focus(); }
    });
    details.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && details.open) {
        details.open = false;
        var summary = details.querySelector("summary");
        if (summary) { summary.focus(); }
      }
    });
  }

  function variableRows(box) {
    var add = box.querySelector("[data-add-var]");
    var rows = box.querySelector(".var-rows");
    if (!add || !rows) { return; }
    var max = parseInt(box.getAttribute("data-max") || "20", 10);
    add.hidden = false;
    add.addEventListener("click", function () {
      var all = rows.querySelectorAll(".var-row");
      if (all.length >= max) { add.disabled = true; return; }
      var last = all[all.length - 1];
      var row = last.cloneNode(true);
      var index = all.length;
      var inputs = row.querySelectorAll("input");
      for (var i = 0; i < inputs.length; i++) {
        var input = inputs[i];
        input.name = input.name.replace(/_\d+$/, "_" + index);
        input.id = input.id.replace(/-\d+$/, "-" + index);
        input.value = "";
        if (input.name.indexOf("var_name_") === 0) { input.placeholder = String(index + 1); }
      }
      var labels = row.querySelectorAll("label");
      for (var j = 0; j < labels.length; j++) {
        var f = labels[j].getAttribute("for");
        if (f) { labels[j].setAttribute("for", f.replace(/-\d+$/, "-" + index)); }
      }
      rows.appendChild(row);
      if (all.length + 1 >= max) { add.disabled = true; }
      row.querySelector("input").focus();
    });
  }

  function mappingSelect(select) {
    select.addEventListener("change", function () {
      if (select.value.indexOf("column:") === 0 && select.form) {
        if (select.form.requestSubmit) { select.form.requestSubmit(); } else { select.form.submit(); }
      } else if (select.value === "value") {
        var field = document.getElementById(select.id.replace(/^map_/, "value_"));
        if (field) { field.focus(); }
      }
    });
  }

  function start() {
    var fields = document.querySelectorAll("textarea[maxlength], input[maxlength][data-count]");
    for (var i = 0; i < fields.length; i++) { counterFor(fields[i]); }
    var confirms = document.querySelectorAll("details.confirm");
    for (var j = 0; j < confirms.length; j++) { confirmFor(confirms[j]); }
    var boxes = document.querySelectorAll("[data-vars]");
    for (var k = 0; k < boxes.length; k++) { variableRows(boxes[k]); }
    var maps = document.querySelectorAll("select[data-refresh]");
    for (var m = 0; m < maps.length; m++) { mappingSelect(maps[m]); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
