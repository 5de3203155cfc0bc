/* The job page's four charts (Chart.js, vendored), drawn from #chart-data and redrawn when
   the theme changes or a live refresh brought new chart data; an unchanged refresh keeps them. */
(function () {
  "use strict";
  var charts = [], data = null;

  function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
  function humanDuration(s) {
    if (s == null) return "–";
    if (s < 60) return (s >= 10 ? s.toFixed(0) : s.toFixed(1)) + " s";
    var m = Math.floor(s / 60);
    if (m < 60) return m + " min " + Math.round(s % 60) + " s";
    var h = Math.floor(m / 60);
    if (h < 48) return h + " h " + (m % 60) + " min";
    return Math.floor(h / 24) + " d " + (h % 24) + " h";
  }
  function humanBytes(n) {
    if (n == null) return "–";
    var units = ["B", "KB", "MB", "GB", "TB", "PB"], i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : n.toFixed(0)) + " " + units[i];
  }
  // the page's one format for times (app.js; docs/dashboard.md)
  function when(t) {
    var stamp = window.backwatch && window.backwatch.stamp;
    return stamp ? stamp(t * 1000) : new Date(t * 1000).toISOString();
  }

  function draw() {
    charts.forEach(function (c) { c.destroy(); });
    charts = [];
    var holder = document.getElementById("chart-data");
    if (!holder || !window.Chart) return;
    data = JSON.parse(holder.textContent);
    var Chart = window.Chart;
    var text = css("--text"), muted = css("--muted"), line = css("--line"), accent = css("--accent");
    var palette = ["--p0", "--p1", "--p2", "--p3", "--p4", "--p5", "--p6", "--p7"].map(css);
    Chart.defaults.color = muted;
    Chart.defaults.borderColor = line;
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    var labels = data.runs.map(function (r) { return when(r.t); });
    // a failed run is told by its shape too, not by colour alone
    var failed = data.runs.map(function (r) { return r.status === "failed" || r.status === "timed_out"; });
    var pointStyle = failed.map(function (f) { return f ? "crossRot" : "circle"; });
    var pointRadius = failed.map(function (f) { return f ? 7 : 3; });
    var statusColor = data.runs.map(function (r) {
      return r.status === "success" ? css("--ok") : r.status === "warning" ? css("--warn")
        : (r.status === "failed" || r.status === "timed_out") ? css("--bad") : css("--idle");
    });
    var base = {
      responsive: true, maintainAspectRatio: false, animation: false,
      interaction: { mode: "index", intersect: false },
      plugins: { legend: { display: false } },
      onClick: function (_e, items) {
        if (items.length) location.href = "/runs/" + encodeURIComponent(data.runs[items[0].index].id);
      }
    };
    function make(id, config) {
      var canvas = document.getElementById(id);
      if (!canvas) return;
      var chart = new Chart(canvas, config);
      charts.push(chart);
      canvas.bwChart = chart; // a redraw (theme, new data) keeps the canvas and its keys
      if (canvas.getAttribute("role") === "slider" && !canvas.bwKeys) {
        canvas.bwKeys = true;
        keyboard(canvas);
      }
    }
    make("chart-duration", {
      type: "line",
      data: { labels: labels, datasets: [{ label: "Duration", data: data.duration, borderColor: accent,
        backgroundColor: accent + "33", fill: true, tension: 0.25, spanGaps: true, pointRadius: pointRadius,
        pointStyle: pointStyle, pointBorderWidth: failed.map(function (f) { return f ? 3 : 1; }),
        pointBorderColor: statusColor, pointBackgroundColor: statusColor }] },
      options: Object.assign({}, base, {
        scales: { x: { ticks: { maxTicksLimit: 6, maxRotation: 0 } },
          y: { beginAtZero: true, ticks: { callback: function (v) { return humanDuration(v); } } } },
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: function (c) { return "Duration " + humanDuration(c.parsed.y); } } } }
      })
    });
    make("chart-size", {
      type: "bar",
      data: { labels: labels, datasets: [{ label: "Size", data: data.size, backgroundColor: statusColor, borderRadius: 2 }] },
      options: Object.assign({}, base, {
        scales: { x: { ticks: { maxTicksLimit: 6, maxRotation: 0 } },
          y: { beginAtZero: true, ticks: { callback: function (v) { return humanBytes(v); } } } },
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: function (c) { return "Size " + humanBytes(c.parsed.y); } } } }
      })
    });
    var latest = data.latest || { phases: {} };
    var names = Object.keys(latest.phases);
    make("chart-phases", {
      type: "doughnut",
      data: { labels: names, datasets: [{ data: names.map(function (n) { return latest.phases[n]; }),
        backgroundColor: names.map(function (n, i) {
          var at = Object.keys(data.phases).indexOf(n);
          return palette[(at < 0 ? i : at) % palette.length];
        }), borderColor: css("--card") }] },
      options: { responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: true, position: "right", labels: { color: text, boxWidth: 12 } },
          tooltip: { callbacks: { label: function (c) { return c.label + ": " + humanDuration(c.parsed); } } } } }
    });
    var phaseNames = Object.keys(data.phases);
    make("chart-stacked", {
      type: "bar",
      data: { labels: labels, datasets: phaseNames.map(function (n, i) {
        return { label: n, data: data.phases[n], backgroundColor: palette[i % palette.length], stack: "phases" };
      }) },
      options: Object.assign({}, base, {
        scales: { x: { stacked: true, ticks: { maxTicksLimit: 6, maxRotation: 0 } },
          y: { stacked: true, beginAtZero: true, ticks: { callback: function (v) { return humanDuration(v); } } } },
        plugins: { legend: { display: phaseNames.length > 0, labels: { color: text, boxWidth: 12 } },
          tooltip: { callbacks: { label: function (c) { return c.dataset.label + ": " + humanDuration(c.parsed.y); } } } }
      })
    });
  }

  /* ---- keyboard: a trend chart is a slider over the runs (arrows, Home, End, Enter) ---- */
  function describe(i) {
    var r = data.runs[i];
    return "run " + (i + 1) + " of " + data.runs.length + ", " + when(r.t) + ", " + r.status.replace("_", " ") +
      ", duration " + humanDuration(data.duration[i]) + ", size " + humanBytes(data.size[i]);
  }
  function keyboard(canvas) {
    function count() { return data ? data.runs.length : 0; }
    function at() { return Math.min(count(), Math.max(1, Number(canvas.getAttribute("aria-valuenow")) || count())) - 1; }
    function show(i) {
      var chart = canvas.bwChart;
      var active = i < 0 ? [] : chart.data.datasets.map(function (_d, k) { return { datasetIndex: k, index: i }; });
      if (i >= 0) {
        canvas.setAttribute("aria-valuenow", String(i + 1));
        canvas.setAttribute("aria-valuetext", describe(i));
      }
      chart.setActiveElements(active);
      chart.tooltip.setActiveElements(active, { x: 0, y: 0 });
      chart.update("none");
    }
    canvas.addEventListener("focus", function () { if (count()) show(at()); });
    canvas.addEventListener("blur", function () { show(-1); });
    canvas.addEventListener("keydown", function (e) {
      var n = count(), i = at();
      if (!n) return;
      if (e.key === "ArrowLeft" || e.key === "ArrowDown") i = Math.max(0, i - 1);
      else if (e.key === "ArrowRight" || e.key === "ArrowUp") i = Math.min(n - 1, i + 1);
      else if (e.key === "Home") i = 0;
      else if (e.key === "End") i = n - 1;
      else if (e.key === "Enter") { location.href = "/runs/" + encodeURIComponent(data.runs[i].id); return; }
      else return;
      e.preventDefault();
      show(i);
    });
  }

  function current() {
    // still the drawn canvases with the drawn data: nothing to redraw
    return charts.length > 0 && charts.every(function (c) { return c.canvas && c.canvas.isConnected; });
  }
  function start() {
    draw();
    document.addEventListener("bw:updated", function () { if (!current()) draw(); });
    document.addEventListener("bw:theme", draw);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
