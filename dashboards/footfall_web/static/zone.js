/* footfall-web agency page: today's chart (people in per hour, visits per hour). The
   figures are in the page's text and table too; the chart is for the eyes only. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("state").textContent);
  var box = document.getElementById("today-chart");
  if (!box || typeof uPlot === "undefined" || !data.xs.length) return;
  var css = getComputedStyle(document.documentElement);
  var ink = css.getPropertyValue("--ink").trim() || "#1d2127";
  var accent = css.getPropertyValue("--accent").trim() || "#1f5fa8";
  var muted = css.getPropertyValue("--muted").trim() || "#5b6470";
  var line = css.getPropertyValue("--line").trim() || "#dde1e6";
  var hours = new Intl.DateTimeFormat(data.locale, { hour: "2-digit", minute: "2-digit", timeZone: data.timezone });
  var plot = null;
  function draw() {
    var width = Math.max(280, box.clientWidth || 600);
    var opts = {
      width: width, height: 220,
      legend: { show: true, live: false }, cursor: { show: false }, select: { show: false },
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1000), data.timezone); },
      scales: { x: { time: true, range: function () { return [data.start, data.end]; } }, y: { range: function (u, mn, mx) { return [0, Math.max(1, mx) * 1.1]; } } },
      axes: [
        { stroke: muted, grid: { stroke: line }, space: 70, incrs: [3600, 7200, 10800, 14400, 21600],
          values: function (u, vals) { return vals.map(function (v) { return hours.format(new Date(v * 1000)); }); } },
        { stroke: muted, grid: { stroke: line }, size: 50 }
      ],
      series: [
        {},
        { label: data.labels.highest, stroke: ink, width: 2, paths: uPlot.paths.stepped({ align: 1 }),
          points: { show: false } },
        { label: data.labels.visits, stroke: accent, fill: accent + "55", width: 1,
          paths: uPlot.paths.bars({ size: [0.6, 40], align: 1 }), points: { show: false } }
      ]
    };
    if (plot) plot.destroy();
    box.textContent = "";
    plot = new uPlot(opts, [data.xs, data.max, data.visits], box);
  }
  draw();
  var timer = null;
  window.addEventListener("resize", function () { clearTimeout(timer); timer = setTimeout(draw, 200); });
})();
