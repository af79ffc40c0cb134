// The overview's live numbers and chart: one EventSource on /events ("counts" events);
// the tables are swapped by htmx's SSE extension from the same stream's "overview" events.
"use strict";
(function () {
  function start() {
    var chart = document.getElementById("chart");
    if (!chart || typeof uPlot === "undefined" || typeof EventSource === "undefined") return;
    var keep = 120;
    var data = [[], [], []];
    var plot = new uPlot({
      width: Math.max(300, chart.clientWidth - 2), height: 200,
      series: [{}, { label: "connections", stroke: "#2b6cb0" },
               { label: "requests in flight", stroke: "#c05621" }],
      axes: [{}, { size: 40 }],
    }, data, chart);
    var source = new EventSource(chart.dataset.events);
    source.addEventListener("counts", function (event) {
      var counts = JSON.parse(event.data);
      data[0].push(counts.t); data[1].push(counts.connections); data[2].push(counts.requests);
      if (data[0].length > keep) data.forEach(function (series) { series.shift(); });
      plot.setData(data);
      var connections = document.getElementById("connections");
      var requests = document.getElementById("requests");
      if (connections) connections.textContent = counts.connections;
      if (requests) requests.textContent = counts.requests;
      chart.dataset.samples = data[0].length;
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
