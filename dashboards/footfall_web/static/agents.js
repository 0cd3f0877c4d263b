/* footfall-web live board: each site's agents (online, offline), and the Retire button
   of an offline one, asked first in a modal <dialog>. board.js hands in its helpers and
   its one way of posting an action (the page's CSRF token, the server's reason). */
window.footfallAgents = function (ctx) {
  "use strict";
  var state = ctx.state, sites = ctx.sites, tr = ctx.tr, el = ctx.el, key = ctx.key;
  var siteTime = ctx.siteTime, post = ctx.post;
  var T = state.texts;
  var base = state.base || "";

  var agentNotes = {}; // site -> {text, error}: what the last retirement did
  var retiring = {}; // "site/agent" -> true while its retirement is under way

  function render(s) {
    var ul = document.getElementById("agents-" + s.site);
    var had = ul.contains(document.activeElement) ? document.activeElement.dataset.agent : null;
    ul.textContent = "";
    if (!s.agents.length) ul.appendChild(el("li", "empty", T.no_agents));
    s.agents.forEach(function (a) {
      var li = el("li", "agent " + (a.online ? "online" : "offline"), a.agent + (a.online ? "" : " " + T.offline));
      // the state in words, not only the mark's colour and shape (✓ / ✕)
      if (a.online) li.appendChild(el("span", "visually-hidden", " " + T.online));
      li.setAttribute("aria-label", a.agent + ": " + (a.online ? T.online : T.offline));
      li.title = tr("agent_since", { state: a.online ? T.online : T.offline, time: siteTime(s.site, a.ts), sw: a.sw });
      // only a Pi that is gone: an online one is retired with force, from the CLI or API.
      // Every site's board has it: retiring goes over footfall-web's own MQTT connection,
      // not through footfall-alerts as Acknowledge and Silence do.
      if (!a.online) {
        var b = el("button", "act-retire", T.retire);
        b.type = "button";
        b.dataset.agent = a.agent;
        b.setAttribute("aria-label", tr("retire_agent", { agent: a.agent }));
        // aria-disabled, not disabled: the button keeps the keyboard's focus meanwhile
        if (retiring[key(s.site, a.agent)]) b.setAttribute("aria-disabled", "true");
        b.addEventListener("click", function () { askRetire(s.site, a.agent); });
        li.appendChild(document.createTextNode(" "));
        li.appendChild(b);
      }
      ul.appendChild(li);
    });
    var note = agentNotes[s.site] || {};
    var said = document.getElementById("agent-notes-" + s.site);
    said.querySelector("[role=status]").textContent = note.error ? "" : note.text || "";
    said.querySelector("[role=alert]").textContent = note.error ? note.text : "";
    // a re-render (the stream, an answer) leaves the keyboard where it was
    if (had) refocus(s.site, had);
  }

  function refocus(site, agent) {
    var b = document.querySelector("#agents-" + site + ' button[data-agent="' + agent + '"]');
    (b || document.getElementById("agent-notes-" + site)).focus();
  }

  // Retiring asks first, in a modal <dialog>: Cancel has the focus, Escape cancels.
  var dialog = document.getElementById("retire-dialog");
  var asked = null; // {site, agent} the open dialog asks about
  function askRetire(site, agent) {
    if (retiring[key(site, agent)]) return;
    asked = { site: site, agent: agent };
    document.getElementById("retire-title").textContent = tr("retire_confirm", { agent: agent });
    dialog.returnValue = "";
    dialog.showModal();
  }
  dialog.querySelectorAll("button").forEach(function (b) {
    b.addEventListener("click", function () { dialog.close(b.value); });
  });
  dialog.addEventListener("close", function () {
    var a = asked;
    asked = null;
    if (!a) return;
    if (dialog.returnValue === "retire") retire(a.site, a.agent);
    else refocus(a.site, a.agent); // the button may have been drawn anew meanwhile
  });

  function retire(site, agent) {
    var k = key(site, agent);
    retiring[k] = true;
    delete agentNotes[site];
    render(sites[site]);
    refocus(site, agent);
    var url = base + "/api/v1/sites/" + encodeURIComponent(site) + "/agents/" +
      encodeURIComponent(agent) + "/retire";
    post(url, {}).then(function () {
      // off the broker when the answer comes; the stream tells every other board
      sites[site].agents = sites[site].agents.filter(function (x) { return x.agent !== agent; });
      agentNotes[site] = { text: tr("retired", { agent: agent }) };
    }, function (e) {
      agentNotes[site] = { text: tr("retire_failed", { agent: agent, error: e.message }), error: true };
    }).then(function () {
      delete retiring[k];
      render(sites[site]);
    });
  }

  return { render: render };
};
