// The overview's live numbers and chart: one EventSource on /events ("counts" events);
// the tables are swapped by htmx's SSE extension from the same stream's "overview" events.
"use strict";
(function () {
  function start() {
    var chart = document.getElementById("chart");
    if (!chart || typeof uPlot === "undefined" || typeof EventSource === "undefined") return;
    var keep = 120;
    var data = [[], [], [], []];
    var plot = new uPlot({
      width: Math.max(300, chart.clientWidth - 2), height: 200,
      series: [{}, { label: "connections", stroke: "#2b6cb0" },
               { label: "requests in flight", stroke: "#c05621" },
               { label: "requests/s", stroke: "#2f855a" }],
      axes: [{}, { size: 40 }],
    }, data, chart);
    var source = new EventSource(chart.dataset.events);
    source.addEventListener("counts", function (event) {
      var counts = JSON.parse(event.data);
      data[0].push(counts.t); data[1].push(counts.connections); data[2].push(counts.requests);
      data[3].push(counts.per_second);
      if (data[0].length > keep) data.forEach(function (series) { series.shift(); });
      plot.setData(data);
      var connections = document.getElementById("connections");
      var requests = document.getElementById("requests");
      if (connections) connections.textContent = counts.connections;
      if (requests) requests.textContent = counts.requests;
      var perSecond = document.getElementById("per-second");
      if (perSecond && counts.per_second !== null) perSecond.textContent = counts.per_second;
      chart.dataset.samples = data[0].length;
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();

// Actions: each a call to the /api/ endpoint the CLI uses (same scope, same audit line).
// Results are written with textContent only: nothing from the server becomes markup.
(function () {
  var apiBase = "";  // the admin API is at the site root; the UI under /ui

  function call(method, path, body, headers) {
    var init = { method: method, credentials: "same-origin",
                 headers: Object.assign({ "Content-Type": "application/json" }, headers || {}) };
    if (body !== undefined) init.body = JSON.stringify(body);
    return fetch(apiBase + path, init).then(function (response) {
      return response.json().then(function (data) { return { status: response.status, data: data }; });
    });
  }

  function say(id, text, good) {
    var node = document.getElementById(id);
    if (!node) return;
    node.textContent = text;
    node.className = good ? "good" : "bad";
  }

  function appAction(button) {
    var name = button.dataset.app, verb = button.dataset.appAction;
    say("app-action-result", verb + "ing " + name + "...", true);
    call("POST", "/api/apps/" + encodeURIComponent(name) + "/" + verb).then(function (r) {
      say("app-action-result", r.status === 200 ? verb + ": done" : (r.data.error || r.status),
          r.status === 200);
    });
  }

  function showErrors(errors) {
    var list = document.getElementById("config-errors");
    list.textContent = "";
    (errors || []).forEach(function (e) {
      var item = document.createElement("li");
      var key = document.createElement("code");
      key.textContent = e.key || "(file)";
      item.appendChild(key);
      item.appendChild(document.createTextNode(": " + e.message));
      list.appendChild(item);
    });
  }

  function configAction(button) {
    var form = document.getElementById("config-form");
    var text = document.getElementById("config-text").value;
    var verb = button.dataset.config;
    var diff = document.getElementById("config-diff");
    say("config-outcome", "", true);
    if (verb === "validate") {
      call("POST", "/api/config/validate", { text: text }).then(function (r) {
        showErrors(r.data.errors);
        say("config-outcome", r.data.valid ? "valid" : "not valid", r.data.valid);
      });
    } else if (verb === "diff") {
      call("POST", "/api/config/diff", { text: text }).then(function (r) {
        diff.hidden = false;
        diff.textContent = r.data.diff || "(no change)";
      });
    } else if (verb === "apply") {
      call("PUT", "/api/config", { text: text }, { "If-Match": form.dataset.etag }).then(function (r) {
        showErrors(r.data.errors);
        var ok = r.status === 200;
        say("config-outcome", ok ? "applied" + (r.data.version ? " as version " + r.data.version : "")
            : (r.data.error || "refused (" + r.status + ")"), ok);
        if (r.data.etag && ok) form.dataset.etag = r.data.etag;
        if (ok) setTimeout(function () { location.reload(); }, 300);
      });
    }
  }

  function rollback(button) {
    call("POST", "/api/config/rollback/" + button.dataset.rollback).then(function (r) {
      var ok = r.status === 200;
      say("config-outcome", ok ? "rolled back to " + button.dataset.rollback
          : (r.data.error || r.status), ok);
      if (ok) setTimeout(function () { location.reload(); }, 300);
    });
  }

  function localTimes() {
    document.querySelectorAll(".when[data-time]").forEach(function (cell) {
      var seconds = parseFloat(cell.dataset.time);
      if (!isNaN(seconds)) cell.textContent = new Date(seconds * 1000).toLocaleString();
    });
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.appAction) appAction(button);
    else if (button.dataset.config) configAction(button);
    else if (button.dataset.rollback) rollback(button);
  });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", localTimes);
  else localTimes();
})();
