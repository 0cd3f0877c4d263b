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

  function drawForecast(v) {
    var title = document.getElementById("forecast-title");
    var pts = v.forecast.filter(function (p) { return p.percent !== null || p.count !== null; });
    if (!pts.length || typeof uPlot === "undefined") {
      title.hidden = true; box.textContent = ""; if (plot) { plot.destroy(); plot = null; } return;
    }
    title.hidden = false;
    var usePct = pts.some(function (p) { return p.percent !== null; });
    var xs = [], ys = [];
    v.forecast.forEach(function (p) {
      var hm = p.time.split(":");
      xs.push(Number(hm[0]) + Number(hm[1]) / 60);
      ys.push(usePct ? p.percent : p.count);
    });
    var width = Math.max(240, box.clientWidth || 400);
    var height = Math.round(Math.min(320, Math.max(140, width * 0.38)));
    var big = width > 700;
    var opts = {
      width: width, height: height,
      legend: { show: false }, cursor: { show: false }, select: { show: false },
      scales: { x: { time: false }, y: { range: function (u, mn, mx) { return [0, Math.max(usePct ? 100 : 1, mx) * 1.05]; } } },
      axes: [
        { stroke: "#fff", grid: { show: false }, ticks: { stroke: "rgba(255,255,255,.5)" },
          font: (big ? 20 : 13) + "px system-ui, sans-serif", size: big ? 44 : 32,
          values: function (u, vals) { return vals.map(function (x) { return Math.floor(x) + (view.lang === "en" ? ":00" : ""); }); },
          incrs: [1, 2, 3, 4, 6] },
        { stroke: "#fff", grid: { stroke: "rgba(255,255,255,.18)" }, ticks: { show: false },
          font: (big ? 18 : 12) + "px system-ui, sans-serif", size: big ? 64 : 44,
          values: function (u, vals) { return vals.map(function (x) { return usePct ? x + " %" : x; }); } }
      ],
      series: [{}, { stroke: "#fff", width: big ? 4 : 2.5, fill: "rgba(255,255,255,.22)", points: { show: false } }]
    };
    if (plot) plot.destroy();
    box.textContent = "";
    plot = new uPlot(opts, [xs, ys], box);
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
