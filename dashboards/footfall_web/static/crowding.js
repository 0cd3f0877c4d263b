/* footfall-web public display: refreshes from the public API, draws today's forecast. */
(function () {
  "use strict";
  var state = JSON.parse(document.getElementById("state").textContent);
  var texts = state.texts;
  var view = state.view;
  var plot = null;
  var box = document.getElementById("forecast");

  function fmt(s, vals) {
    return s.replace(/\{(\w+)\}/g, function (_, k) { return vals[k] === undefined ? "" : vals[k]; });
  }
  var receivedAt = performance.now();

  // Never a stale number as if live: when the figures outlive their validity without a
  // fresh answer (server or network gone), show "no data" until one comes.
  function expire() {
    if (view.state !== "open" || view.fresh_for_s === null) return;
    if (performance.now() - receivedAt < view.fresh_for_s * 1000) return;
    render(Object.assign({}, view, {
      state: "no_data", level: null, label: texts.no_data, percent: null, count: null,
      fresh_for_s: null
    }));
  }

  function render(v) {
    view = v;
    var cls = ["crowding", "state-" + v.state];
    if (v.level) cls.push("level-" + v.level);
    if (document.body.classList.contains("kiosk")) cls.push("kiosk");
    document.body.className = cls.join(" ");
    document.getElementById("level").textContent = v.label;
    var pct = "";
    if (v.percent !== null) pct = fmt(texts.percent, { pct: v.percent });
    else if (v.count !== null) pct = fmt(texts.people, { count: v.count });
    else if (v.state === "no_data") pct = texts.no_data_hint;
    document.getElementById("percent").textContent = pct;
    document.getElementById("gauge-fill").style.width = Math.min(100, v.percent || 0) + "%";
    document.getElementById("peak").textContent = v.peak_label || "";
    document.getElementById("hours").textContent = v.hours_today || "";
    document.getElementById("updated").textContent =
      v.updated_time && v.state === "open" ? fmt(texts.updated, { time: v.updated_time }) : "";
    document.title = v.name + " · " + v.label;
    drawForecast(v);
  }

  // Label widths as the chart's canvas will draw them, so that axis labels are spaced
  // by their real size (no "10:0012:00" at 1920 px) and the y axis is wide enough.
  var measure = document.createElement("canvas").getContext("2d");
  function textWidth(font, s) { measure.font = font; return measure.measureText(s).width; }
  function hours(hm) { var p = hm.split(":"); return Number(p[0]) + Number(p[1]) / 60; }
  var drawn = { x: [], y: [] }; // the tick values last drawn, for labels() below

  // The forecast as a table for screen readers (the chart itself is hidden from them).
  function forecastTable(v, usePct) {
    var table = document.getElementById("forecast-table");
    if (!table) return;
    var body = table.tBodies[0];
    body.textContent = "";
    v.forecast.forEach(function (p) {
      var value = usePct ? p.percent : p.count;
      if (value === null) return;
      var tr = document.createElement("tr");
      var th = document.createElement("th");
      th.scope = "row";
      th.textContent = v.lang === "en" ? p.time : p.time.replace(":", ".");
      var td = document.createElement("td");
      td.textContent = usePct ? fmt(texts.percent, { pct: value }) : fmt(texts.people, { count: value });
      tr.appendChild(th); tr.appendChild(td); body.appendChild(tr);
    });
  }

  // A line at the site's current time, labelled "nyt / nu / now", over the chart.
  function placeNow(u) {
    var mark = u.over.querySelector(".now-marker");
    var x = hours(view.now_time || "00:00");
    if (x < u.scales.x.min || x > u.scales.x.max) { if (mark) mark.hidden = true; return; }
    if (!mark) {
      mark = document.createElement("div");
      mark.className = "now-marker";
      mark.id = "now-marker";
      var label = document.createElement("span");
      label.className = "now-label";
      mark.appendChild(label);
      u.over.appendChild(mark);
    }
    mark.hidden = false;
    mark.dataset.time = view.now_time;
    mark.firstChild.textContent = texts.now;
    var left = u.valToPos(x, "x");
    mark.style.left = left + "px";
    // the label on the side with room for it
    mark.classList.toggle("label-left", left > u.over.clientWidth / 2);
  }

  function drawForecast(v) {
    var title = document.getElementById("forecast-title");
    var pts = v.forecast.filter(function (p) { return p.percent !== null || p.count !== null; });
    if (!pts.length || typeof uPlot === "undefined") {
      title.hidden = true; box.textContent = ""; if (plot) { plot.destroy(); plot = null; }
      forecastTable(v, false);
      return;
    }
    title.hidden = false;
    var usePct = pts.some(function (p) { return p.percent !== null; });
    forecastTable(v, usePct);
    var xs = [], ys = [];
    v.forecast.forEach(function (p) {
      xs.push(hours(p.time));
      ys.push(usePct ? p.percent : p.count);
    });
    var width = Math.max(240, box.clientWidth || 400);
    var height = Math.round(Math.min(320, Math.max(140, width * 0.38)));
    var big = width > 560;
    var fam = "px system-ui, sans-serif";
    var xFont = (big ? 20 : 13) + fam, yFont = (big ? 18 : 12) + fam;
    var xLabel = function (x) { return Math.floor(x) + (v.lang === "en" ? ":00" : ""); };
    var yLabel = function (y) { return usePct ? y + " %" : String(y); };
    var top = usePct ? 100 : Math.max(1, Math.max.apply(null, ys.filter(function (y) { return y !== null; })));
    // a gap of one character's height between labels
    var xSpace = textWidth(xFont, xLabel(22)) + (big ? 20 : 13);
    var ySize = textWidth(yFont, yLabel(Math.ceil(top * 1.05))) + (big ? 22 : 14);
    var opts = {
      width: width, height: height,
      legend: { show: false }, cursor: { show: false }, select: { show: false },
      scales: { x: { time: false }, y: { range: function (u, mn, mx) { return [0, Math.max(usePct ? 100 : 1, mx) * 1.05]; } } },
      axes: [
        { stroke: "#fff", grid: { show: false }, ticks: { stroke: "rgba(255,255,255,.5)" },
          font: xFont, size: big ? 44 : 32, space: xSpace, incrs: [1, 2, 3, 4, 6],
          values: function (u, vals) { drawn.x = vals.slice(); return vals.map(xLabel); } },
        { stroke: "#fff", grid: { stroke: "rgba(255,255,255,.18)" }, ticks: { show: false },
          font: yFont, size: ySize, space: (big ? 18 : 12) * 2.2,
          values: function (u, vals) { drawn.y = vals.slice(); return vals.map(yLabel); } }
      ],
      series: [{}, { stroke: "#fff", width: big ? 4 : 2.5, fill: "rgba(255,255,255,.22)", points: { show: false } }],
      hooks: { draw: [placeNow] }
    };
    if (plot) plot.destroy();
    box.textContent = "";
    plot = new uPlot(opts, [xs, ys], box);
    // where each axis label is drawn (CSS px, page coordinates): tests check they do
    // not overlap at kiosk and phone sizes
    window.footfallForecast = {
      plot: plot,
      labels: function () {
        var r = plot.over.getBoundingClientRect(), out = [];
        drawn.x.forEach(function (x) {
          var w = textWidth(xFont, xLabel(x)), cx = r.left + plot.valToPos(x, "x");
          out.push({ axis: "x", text: xLabel(x), left: cx - w / 2, right: cx + w / 2 });
        });
        drawn.y.forEach(function (y) {
          var h = (big ? 18 : 12), cy = r.top + plot.valToPos(y, "y");
          out.push({ axis: "y", text: yLabel(y), top: cy - h / 2, bottom: cy + h / 2,
                     right: r.left - 4, left: r.left - 4 - textWidth(yFont, yLabel(y)) });
        });
        return out;
      }
    };
  }

  function refresh() {
    var url = state.base + "/api/v1/public/sites/" + view.site + "/zones/" + view.zone + "/crowding?lang=" + view.lang;
    fetch(url, { cache: "no-store" }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (v) { if (v) { receivedAt = performance.now(); render(v); } })
      .catch(function () {})
      .then(expire);
  }
  render(view);
  setInterval(refresh, state.refresh_s * 1000);
  setInterval(expire, 1000);
  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer); resizeTimer = setTimeout(function () { drawForecast(view); }, 200);
  });
})();
