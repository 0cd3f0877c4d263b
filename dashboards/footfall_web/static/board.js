/* footfall-web live board: renders the snapshot, follows /api/v1/stream (SSE). */
(function () {
  "use strict";
  var state = JSON.parse(document.getElementById("state").textContent);
  var base = state.base || "";
  var staleMs = state.stale_after_s * 1000;
  var offset = state.now - Date.now(); // server clock minus browser clock
  var sites = state.snapshot;
  var sparks = {}; // "site/zone" -> {plot, xs, ys}
  var root = document.getElementById("sites");
  var conn = document.getElementById("conn");
  var T = state.texts; // in the board's language (i18n.BOARD_TEXTS)
  var A = state.a11y; // words for what colours and charts show (i18n.ZONE_TEXTS, levels)
  var names = state.names; // site -> {name, timezone, zones: {id: name}} in that language

  function tr(k, vals) {
    return T[k].replace(/\{(\w+)\}/g, function (_, n) { return vals && vals[n] !== undefined ? vals[n] : ""; });
  }
  function siteName(site, fallback) { return names[site] ? names[site].name : fallback; }
  function zoneName(site, zone, fallback) {
    var n = names[site] && names[site].zones[zone];
    return n || fallback || zone;
  }
  // Times are the site's wall clock, labelled with its zone ("10.18 UTC+2", "10:18 EET"),
  // whatever the browser's own time zone.
  var formats = {};
  function formatter(site, kind) {
    var k = site + "/" + kind;
    if (!formats[k]) {
      var o = { timeZone: names[site] ? names[site].timezone : "UTC" };
      if (kind !== "day") { o.hour = "2-digit"; o.minute = "2-digit"; o.timeZoneName = "short"; }
      if (kind !== "time") { o.day = "numeric"; o.month = "numeric"; }
      formats[k] = new Intl.DateTimeFormat(state.locale, o);
    }
    return formats[k];
  }
  function siteTime(site, ts) {
    var d = new Date(Date.parse(ts));
    var today = formatter(site, "day").format(new Date(Date.now() + offset));
    var sameDay = formatter(site, "day").format(d) === today;
    return formatter(site, sameDay ? "time" : "date").format(d);
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function levelOf(site, zone, ratio) {
    var t = state.thresholds[site + "/" + zone] || { moderate: 0.3, busy: 0.6, very_busy: 0.85 };
    if (ratio === null || ratio === undefined) return "";
    if (ratio >= t.very_busy) return "very_busy";
    if (ratio >= t.busy) return "busy";
    if (ratio >= t.moderate) return "moderate";
    return "";
  }
  function ago(site, ts) {
    if (!ts) return T.no_reading;
    var s = Math.max(0, Math.round((Date.now() + offset - Date.parse(ts)) / 1000));
    if (s < 60) return tr("updated_s", { n: s });
    if (s < 3600) return tr("updated_min", { n: Math.round(s / 60) });
    return tr("updated_at", { time: siteTime(site, ts) });
  }
  function key(site, zone) { return site + "/" + zone; }

  function renderSite(s) {
    var sec = document.getElementById("site-" + s.site);
    if (!sec) {
      sec = el("section", "site");
      sec.id = "site-" + s.site;
      var head = el("div", "site-head");
      var h2 = el("h2", null, siteName(s.site, s.name));
      h2.appendChild(el("small", null, s.site));
      head.appendChild(h2);
      if (names[s.site]) {
        var tz = el("span", "site-tz", tr("times_in", { tz: names[s.site].timezone }));
        tz.id = "tz-" + s.site;
        head.appendChild(tz);
      }
      var agents = el("ul", "agents");
      agents.id = "agents-" + s.site;
      head.appendChild(agents);
      // what the last retirement did, in words: live regions there before they speak
      var said = el("div", "agent-notes");
      said.id = "agent-notes-" + s.site;
      said.tabIndex = -1; // where the keyboard goes when a retired agent's button is gone
      var ok = el("p", "note");
      ok.setAttribute("role", "status");
      var bad = el("p", "note note-error");
      bad.setAttribute("role", "alert");
      said.appendChild(ok);
      said.appendChild(bad);
      head.appendChild(said);
      sec.appendChild(head);
      var alerts = el("ul", "alerts");
      alerts.id = "alerts-" + s.site;
      sec.appendChild(alerts);
      var grid = el("div", "zones");
      grid.id = "zones-" + s.site;
      sec.appendChild(grid);
      root.appendChild(sec);
      s.zones.forEach(function (z) { grid.appendChild(zoneCard(z)); });
      // charts once the cards are laid out, so that they know their width
      s.zones.forEach(function (z) {
        loadSpark(z, document.querySelector("#zone-" + z.site + "-" + z.zone + " .spark"));
      });
    }
    s.zones.forEach(updateZone);
    agentList.render(s);
    renderAlerts(s);
  }

  function zoneCard(z) {
    var card = el("article", "zone" + (z.parent ? " child" : ""));
    card.id = "zone-" + z.site + "-" + z.zone;
    card.dataset.site = z.site;
    card.dataset.zone = z.zone;
    var name = zoneName(z.site, z.zone, z.name);
    var h = el("h3");
    var link = el("a", "zone-link", name); // the agency page: today, this week, links
    link.href = base + "/zones/" + encodeURIComponent(z.site) + "/" + encodeURIComponent(z.zone);
    h.appendChild(link);
    h.appendChild(document.createTextNode(" "));
    var parent = z.parent ? tr("in_parent", { parent: zoneName(z.site, z.parent) }) : "";
    if (parent) h.appendChild(el("span", "parent", parent));
    h.title = parent ? name + " (" + parent + ")" : name; // the card cuts long names
    card.appendChild(h);
    var fig = el("div", "figures");
    var count = el("span", "count", "–");
    count.id = "count-" + z.site + "-" + z.zone;
    fig.appendChild(count);
    fig.appendChild(el("span", "cap", z.capacity ? "/ " + z.capacity : ""));
    fig.appendChild(el("span", "pct", ""));
    card.appendChild(fig);
    card.appendChild(el("span", "level-word", "")); // the bar's colour in words
    var bar = el("div", "bar");
    bar.setAttribute("aria-hidden", "true");
    bar.appendChild(el("div", "bar-fill"));
    if (!z.capacity) bar.hidden = true;
    card.appendChild(bar);
    var spark = el("div", "spark");
    card.appendChild(spark);
    card.appendChild(el("div", "meta", ""));
    return card;
  }

  function updateZone(z) {
    var card = document.getElementById("zone-" + z.site + "-" + z.zone);
    if (!card) return;
    card.dataset.ts = z.ts || "";
    var count = card.querySelector(".count");
    var txt = z.count === null || z.count === undefined ? "–" : String(z.count);
    if (count.textContent !== txt) count.textContent = txt;
    var pct = card.querySelector(".pct");
    var fill = card.querySelector(".bar-fill");
    if (z.capacity && z.count !== null && z.count !== undefined) {
      var r = z.count / z.capacity;
      pct.textContent = Math.round(r * 100) + " %";
      fill.style.width = Math.min(100, r * 100) + "%";
      fill.className = "bar-fill " + levelOf(z.site, z.zone, r);
      card.querySelector(".level-word").textContent = A.levels[levelOf(z.site, z.zone, r) || "quiet"];
    } else {
      pct.textContent = "";
      fill.style.width = "0";
      card.querySelector(".level-word").textContent = "";
    }
    markStale(card);
    var sp = sparks[key(z.site, z.zone)];
    if (sp && z.count !== null && z.count !== undefined && z.ts) {
      var t = Date.parse(z.ts) / 1000;
      if (!sp.xs.length || t >= sp.xs[sp.xs.length - 1]) {
        sp.xs.push(t); sp.ys.push(z.count);
        var cutoff = t - state.sparkline_hours * 3600;
        while (sp.xs.length && sp.xs[0] < cutoff) { sp.xs.shift(); sp.ys.shift(); }
        sp.plot.setData([sp.xs, sp.ys]);
        sparkLabel(z.site, z.zone, sp.box, sp.ys);
      }
    }
  }

  function markStale(card) {
    var ts = card.dataset.ts;
    var stale = !ts || Date.now() + offset - Date.parse(ts) > staleMs;
    card.classList.toggle("stale", stale);
    card.querySelector(".meta").textContent =
      (stale && ts ? T.no_data + " · " : "") + ago(card.dataset.site, ts);
  }

  // The sparkline's figures in words: a chart is not readable without sight.
  function sparkLabel(site, zone, box, ys) {
    var known = ys.filter(function (y) { return y !== null && y !== undefined; });
    box.setAttribute("role", "img");
    box.setAttribute("aria-label", known.length ? A.chart_spark.replace(/\{(\w+)\}/g, function (_, k) {
      return {
        zone: zoneName(site, zone), hours: state.sparkline_hours,
        min: Math.min.apply(null, known), max: Math.max.apply(null, known), now: known[known.length - 1]
      }[k];
    }) : zoneName(site, zone) + ": " + T.no_reading);
  }

  function loadSpark(z, box) {
    sparkLabel(z.site, z.zone, box, []);
    if (typeof uPlot === "undefined") return;
    var xs = [], ys = [];
    var opts = {
      width: Math.max(120, box.clientWidth || 240), height: 48,
      legend: { show: false }, cursor: { show: false }, select: { show: false },
      axes: [{ show: false }, { show: false }],
      scales: { x: { time: true, range: function () {
        var now = (Date.now() + offset) / 1000;
        return [now - state.sparkline_hours * 3600, now];
      } }, y: { range: function (u, mn, mx) { return [0, Math.max(mx, z.capacity || 1) * 1.05]; } } },
      series: [{}, { stroke: "#1f5fa8", width: 1.5, fill: "rgba(31,95,168,.12)", points: { show: false } }]
    };
    var plot = new uPlot(opts, [xs, ys], box);
    sparks[key(z.site, z.zone)] = { plot: plot, xs: xs, ys: ys, box: box };
    var url = base + "/api/v1/sites/" + z.site + "/zones/" + z.zone + "/history?from=-" +
      Math.round(state.sparkline_hours * 60) + "m&every=5m";
    fetch(url, { credentials: "same-origin" }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (h) {
        if (!h) return;
        var sp = sparks[key(z.site, z.zone)];
        var hx = h.points.map(function (p) { return Date.parse(p.t) / 1000; });
        var hy = h.points.map(function (p) { return p.count; });
        // keep live points newer than the history
        var last = hx.length ? hx[hx.length - 1] : -Infinity;
        for (var i = 0; i < sp.xs.length; i++) if (sp.xs[i] > last) { hx.push(sp.xs[i]); hy.push(sp.ys[i]); }
        sp.xs = hx; sp.ys = hy;
        sp.plot.setData([hx, hy]);
        sparkLabel(z.site, z.zone, sp.box, hy);
      }).catch(function () {});
  }

  var notes = {}; // "site/alert" -> {text, error}: why the last action failed
  var busy = {}; // "site/alert" -> true while an action is under way


  function renderAlerts(s) {
    var ul = document.getElementById("alerts-" + s.site);
    ul.textContent = "";
    var canAct = state.actions && state.actions[s.site];
    s.alerts.forEach(function (a) {
      var k = key(s.site, a.id);
      var li = el("li", "alert " + a.severity);
      li.dataset.alert = a.id;
      li.appendChild(el("b", null, T[a.severity] || a.severity));
      li.appendChild(document.createTextNode(a.summary + " "));
      li.appendChild(el("span", "since", "(" + tr("since", { time: siteTime(s.site, a.started) }) + ")"));
      if (a.acknowledged_by) li.appendChild(el("span", "acked", tr("acknowledged_by", { who: a.acknowledged_by })));
      if (a.silenced_until && Date.parse(a.silenced_until) > Date.now() + offset) {
        li.appendChild(el("span", "silenced", tr("silenced_until", { time: siteTime(s.site, a.silenced_until) })));
      }
      if (canAct) {
        var bar = el("span", "actions");
        if (!a.acknowledged_by) {
          var ack = el("button", "act-ack", T.acknowledge);
          ack.type = "button";
          ack.disabled = !!busy[k];
          ack.addEventListener("click", function () { act(s.site, a, "ack", {}); });
          bar.appendChild(ack);
        }
        (state.silence_hours || []).forEach(function (h) {
          var b = el("button", "act-silence", tr("silence", { h: h }));
          b.type = "button";
          b.dataset.hours = String(h);
          b.disabled = !!busy[k];
          b.addEventListener("click", function () { act(s.site, a, "silence", { hours: h }); });
          bar.appendChild(b);
        });
        li.appendChild(bar);
      }
      var note = notes[k];
      if (note) {
        var n = el("span", "note" + (note.error ? " note-error" : ""), note.text);
        n.setAttribute("role", note.error ? "alert" : "status");
        li.appendChild(n);
      }
      ul.appendChild(li);
    });
  }

  // Every action of the board (alerts, agents) posts this way: with the page's CSRF token,
  // failing with the server's `detail`, which is meant for the person at the board.
  function post(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": state.csrf },
      body: JSON.stringify(body)
    }).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (d) {
        if (!r.ok) throw new Error(d.detail || "HTTP " + r.status);
        return d;
      });
    });
  }

  function act(site, a, what, body) {
    var k = key(site, a.id);
    busy[k] = true;
    delete notes[k];
    renderAlerts(sites[site]);
    var url = base + "/api/v1/sites/" + encodeURIComponent(site) + "/alerts/" +
      encodeURIComponent(a.id) + "/" + what;
    post(url, body).then(function (d) {
      // shown at once; the retained alert on MQTT follows through the stream
      var cur = sites[site].alerts.filter(function (x) { return x.id === a.id; })[0];
      if (!cur) return;
      if (what === "ack" && d.acknowledged_by) cur.acknowledged_by = d.acknowledged_by;
      if (what === "silence" && d.until) cur.silenced_until = d.until;
    }).catch(function (e) {
      notes[k] = { text: tr(what === "ack" ? "ack_failed" : "silence_failed", { error: e.message }), error: true };
    }).then(function () {
      delete busy[k];
      renderAlerts(sites[site]);
    });
  }

  // The badge says "live" only while data flows: an open stream with a site whose newest
  // occupancy is older than stale_after_s (its collector stopped; it republishes every
  // 60 s) says "stale since" that time instead. Sites without any reading are left out.
  var streamOpen = false;
  function markFeed() {
    if (!streamOpen) return;
    var now = Date.now() + offset, worst = null, which = [];
    state.sites.forEach(function (k) {
      var newest = null;
      ((sites[k] && sites[k].zones) || []).forEach(function (z) {
        var t = z.ts ? Date.parse(z.ts) : NaN;
        if (!isNaN(t) && (newest === null || t > newest)) newest = t;
      });
      if (newest === null || now - newest <= staleMs) return;
      which.push(siteName(k, k));
      if (!worst || newest < worst.t) worst = { site: k, t: newest };
    });
    conn.textContent = worst
      ? tr("stale_since", { time: siteTime(worst.site, new Date(worst.t).toISOString()) })
      : T.live;
    conn.className = "conn " + (worst ? "conn-stale" : "conn-live");
    conn.title = worst ? which.join(", ") : T.connection;
  }

  function onOccupancy(z) {
    var s = sites[z.site];
    if (!s) return;
    for (var i = 0; i < s.zones.length; i++) if (s.zones[i].zone === z.zone) s.zones[i] = z;
    updateZone(z);
    markFeed();
  }
  function onAgent(a) {
    var s = sites[a.site];
    if (!s) return;
    s.agents = s.agents.filter(function (x) { return x.agent !== a.agent; });
    if (!a.removed) s.agents.push(a);
    s.agents.sort(function (x, y) { return x.agent < y.agent ? -1 : 1; });
    agentList.render(s);
  }
  function onAlert(a) {
    var s = sites[a.site];
    if (!s) return;
    s.alerts = s.alerts.filter(function (x) { return x.id !== a.id; });
    if (a.state === "firing") s.alerts.push(a);
    renderAlerts(s);
  }

  // the agents' list and the Retire button: static/agents.js, loaded before this file
  var agentList = window.footfallAgents({
    state: state, sites: sites, tr: tr, el: el, key: key, siteTime: siteTime, post: post
  });

  function renderAll() {
    state.sites.forEach(function (k) { if (sites[k]) renderSite(sites[k]); });
  }
  renderAll();

  function connect() {
    var q = state.sites.map(function (s) { return "site=" + encodeURIComponent(s); }).join("&");
    var es = new EventSource(base + "/api/v1/stream?" + q);
    es.addEventListener("open", function () {
      streamOpen = true; conn.textContent = T.live; conn.className = "conn conn-live"; markFeed();
    });
    es.addEventListener("error", function () {
      streamOpen = false; conn.textContent = T.reconnecting; conn.className = "conn conn-wait";
      // refused for good, not just cut (a site of this board is gone, the login ended)
      if (es.readyState === EventSource.CLOSED) reloadWhenServed(2000);
    });
    es.addEventListener("snapshot", function (e) {
      var d = JSON.parse(e.data);
      // the site files changed after this page was made, before its stream started
      if (d.sites_version !== state.sites_version) { es.close(); window.location.reload(); return; }
      offset = d.now - Date.now();
      Object.keys(d.sites).forEach(function (k) { sites[k] = d.sites[k]; });
      renderAll();
      markFeed();
    });
    es.addEventListener("tick", function (e) { offset = JSON.parse(e.data).now - Date.now(); });
    es.addEventListener("occupancy", function (e) { onOccupancy(JSON.parse(e.data)); });
    es.addEventListener("agent", function (e) { onAgent(JSON.parse(e.data)); });
    es.addEventListener("alert", function (e) { onAlert(JSON.parse(e.data)); });
    // the server's site files changed: a site of this board changed or went, or a new one
    // joins a board of every site; the page again, with its names, zones and thresholds
    es.addEventListener("sites", function (e) {
      var d = JSON.parse(e.data);
      var mine = d.changed.concat(d.removed).some(function (k) { return state.sites.indexOf(k) >= 0; });
      if (mine || (state.every_site && d.added.length)) { es.close(); window.location.reload(); }
      else state.sites_version = d.version; // not this board's change: nothing to reload for
    });
  }
  // The page again once the server answers it (200, a redirect to log in, 401, 404), which
  // shows what it serves now; while it answers 5xx (restarting behind a proxy) or not at
  // all, the board keeps what it shows and asks again, less and less often (up to 1 min).
  function reloadWhenServed(wait) {
    setTimeout(function () {
      fetch(window.location.href, { credentials: "same-origin", redirect: "manual", cache: "no-store" })
        .then(function (r) {
          if (r.type === "opaqueredirect" || r.ok || r.status === 401 || r.status === 404) window.location.reload();
          else reloadWhenServed(Math.min(wait * 2, 60000));
        }, function () { reloadWhenServed(Math.min(wait * 2, 60000)); });
    }, wait);
  }
  connect();
  var resizing = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizing);
    resizing = setTimeout(function () {
      Object.keys(sparks).forEach(function (k) {
        var sp = sparks[k];
        sp.plot.setSize({ width: Math.max(120, sp.box.clientWidth), height: 48 });
      });
    }, 200);
  });
  setInterval(function () {
    document.querySelectorAll(".zone").forEach(markStale);
    markFeed();
  }, 5000);
})();
