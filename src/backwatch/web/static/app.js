/* backwatch dashboard: local times, theme toggle, sparklines, copy buttons, log filter and
   live updates over Server-Sent Events (the page re-fetches itself and swaps the parts
   marked data-live-id). No framework, no external requests. */
(function () {
  "use strict";
  var doc = document;

  /* ---- times in the viewer's zone ---- */
  function relative(ms) {
    var delta = (Date.now() - ms) / 1000, ahead = delta < 0, text;
    delta = Math.abs(delta);
    if (delta < 45) return ahead ? "in a moment" : "just now";
    if (delta < 3600) text = Math.round(delta / 60) + " min";
    else if (delta < 172800) text = Math.round(delta / 3600) + " h";
    else text = Math.round(delta / 86400) + " d";
    return ahead ? "in " + text : text + " ago";
  }
  // One format for absolute times (docs/dashboard.md): "2026-12-07 15:15 EST", in the
  // viewer's zone (the server writes UTC); a job's own zone is added where it differs.
  var stampFmts = {};
  function stamp(ms, zone) {
    var key = zone || "", fmt = stampFmts[key];
    if (!fmt) {
      var opts = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
                   hourCycle: "h23", timeZoneName: "short", numberingSystem: "latn" };
      if (zone) opts.timeZone = zone;
      try { fmt = new Intl.DateTimeFormat(undefined, opts); } catch (e) { return ""; }
      stampFmts[key] = fmt;
    }
    var p = {};
    fmt.formatToParts(ms).forEach(function (x) { p[x.type] = x.value; });
    return p.year + "-" + p.month + "-" + p.day + " " + p.hour + ":" + p.minute + " " + p.timeZoneName;
  }
  var viewerZone = new Intl.DateTimeFormat().resolvedOptions().timeZone;
  var fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });
  // "5 min ago <span class=abs>2026-12-07 15:15 EST</span>" (app.css puts the "·" between)
  function setTime(el, rel, abs) {
    if (el.textContent === (rel ? rel + " " + abs : abs)) return; // a rewrite is a DOM change
    el.textContent = rel ? rel + " " : abs;
    if (rel) {
      var span = doc.createElement("span");
      span.className = "abs";
      span.textContent = abs;
      el.appendChild(span);
    }
  }
  function localizeTimes(root) {
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var ms = Date.parse(el.getAttribute("datetime"));
      if (isNaN(ms) || !(el.hasAttribute("data-ago") || el.hasAttribute("data-local"))) return;
      var abs = stamp(ms), zone = el.getAttribute("data-zone");
      if (zone && zone !== viewerZone && stamp(ms, zone)) abs += " (" + stamp(ms, zone) + ", " + zone + ")";
      setTime(el, el.hasAttribute("data-ago") ? relative(ms) : "", abs);
      var title = fullFmt.format(ms) + " (" + el.getAttribute("datetime") + ")";
      if (el.title !== title) el.title = title;
    });
  }

  /* ---- sparklines: data-spark="d1 d2 …" (oldest first) ---- */
  var SVG = "http://www.w3.org/2000/svg";
  function drawSparks(root) {
    root.querySelectorAll("svg[data-spark]").forEach(function (svg) {
      var values = (svg.getAttribute("data-spark") || "").split(" ").filter(Boolean).map(Number);
      while (svg.firstChild) svg.removeChild(svg.firstChild);
      if (values.length < 2) return;
      var max = Math.max.apply(null, values), min = Math.min.apply(null, values);
      var span = max - min || 1, step = 100 / (values.length - 1);
      var pts = values.map(function (v, i) {
        return (i * step).toFixed(1) + "," + (22 - ((v - min) / span) * 20).toFixed(1);
      });
      var area = doc.createElementNS(SVG, "polygon");
      area.setAttribute("class", "area");
      area.setAttribute("points", "0,24 " + pts.join(" ") + " 100,24");
      var line = doc.createElementNS(SVG, "polyline");
      line.setAttribute("points", pts.join(" "));
      svg.appendChild(area);
      svg.appendChild(line);
      svg.setAttribute("aria-label", "Durations of the last " + values.length + " runs");
    });
  }

  /* ---- theme ---- */
  function theme() { return doc.documentElement.getAttribute("data-theme") === "light" ? "light" : "dark"; }
  function syncToggle() {
    var btn = doc.getElementById("theme-toggle");
    if (!btn) return;
    var light = theme() === "light";
    btn.setAttribute("aria-pressed", light ? "true" : "false");
    btn.title = light ? "Dark theme" : "Light theme";
    var label = btn.querySelector(".visually-hidden");
    if (label) label.textContent = "Light theme";
  }
  function toggleTheme() {
    var next = theme() === "light" ? "dark" : "light";
    doc.documentElement.setAttribute("data-theme", next);
    try { localStorage.setItem("bw-theme", next); } catch (e) { /* private mode */ }
    syncToggle();
    doc.dispatchEvent(new CustomEvent("bw:theme", { detail: next }));
  }

  /* ---- copy buttons ---- */
  function copy(btn) {
    var target = doc.querySelector(btn.getAttribute("data-copy"));
    if (!target) return;
    var text = target.textContent;
    function done() {
      btn.classList.add("done");
      btn.textContent = "Copied";
      setTimeout(function () { btn.classList.remove("done"); btn.textContent = "Copy"; }, 1500);
    }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () { fallbackCopy(target) && done(); });
    } else if (fallbackCopy(target)) {
      done();
    }
  }
  function fallbackCopy(el) {
    var range = doc.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    try { return doc.execCommand("copy"); } catch (e) { return false; }
  }

  /* ---- log filter ---- */
  function filterLog() {
    var input = doc.getElementById("log-filter"), log = doc.getElementById("log");
    if (!input || !log) return;
    var needle = input.value.toLowerCase(), shown = 0, lines = log.children;
    for (var i = 0; i < lines.length; i++) {
      var hit = !needle || lines[i].textContent.toLowerCase().indexOf(needle) !== -1;
      lines[i].hidden = !hit;
      if (hit) shown++;
    }
    var out = doc.getElementById("log-count");
    if (out) out.textContent = needle ? shown + " of " + lines.length + " lines" : lines.length + " lines";
  }

  /* ---- a failed run's log opens at its first error (the box scrolls, the page stays) ---- */
  function showLogError() {
    var log = doc.getElementById("log"), line = doc.getElementById("log-error");
    if (!log || !line || location.hash) return;
    log.scrollTop += line.getBoundingClientRect().top - log.getBoundingClientRect().top - log.clientHeight / 3;
  }

  /* ---- live updates ---- */
  // A region is compared as the server wrote it: what this script adds (local times, drawn
  // sparklines, Chart.js sizes on canvases) and the server's own minute-by-minute relative
  // times are left out, so an unchanged page is left alone (issue 19).
  function signature(el) {
    var copy = el.cloneNode(true);
    copy.querySelectorAll("time[datetime]").forEach(function (t) { t.textContent = ""; t.removeAttribute("title"); });
    copy.querySelectorAll("svg[data-spark]").forEach(function (svg) {
      while (svg.firstChild) svg.removeChild(svg.firstChild);
      svg.removeAttribute("aria-label");
    });
    copy.querySelectorAll("canvas").forEach(function (c) {
      c.removeAttribute("style"); c.removeAttribute("width"); c.removeAttribute("height");
      c.removeAttribute("aria-valuenow"); c.removeAttribute("aria-valuetext"); // the keyboard's place
    });
    return copy.innerHTML;
  }
  var FIELDS = "input:not([type=hidden]), select, textarea";
  var FOCUSABLE = "a[href], button, input:not([type=hidden]), select, textarea, [tabindex]";
  // the same control in the region's new copy: by id, else by its place among the region's
  // focusable elements
  function counterpart(oldRegion, fresh, active) {
    if (active.id) {
      var byId = fresh.querySelector("#" + CSS.escape(active.id));
      if (byId) return byId;
    }
    var at = Array.prototype.indexOf.call(oldRegion.querySelectorAll(FOCUSABLE), active);
    return at < 0 ? null : fresh.querySelectorAll(FOCUSABLE)[at] || null;
  }
  var held = false; // a region was kept because someone is typing or choosing in it
  function swap(old, el) {
    var active = doc.activeElement, inside = active && active !== doc.body && old.contains(active);
    if (inside && active.matches(FIELDS)) {
      // never yank a field from under the user: refresh once they leave it
      if (!held) {
        held = true;
        active.addEventListener("blur", function () { held = false; scheduleRefresh(100); }, { once: true });
      }
      return null;
    }
    var fresh = doc.importNode(el, true);
    var target = inside ? counterpart(old, fresh, active) : null;
    old.replaceWith(fresh);
    if (target) target.focus({ preventScroll: true });
    return fresh;
  }
  var refreshing = false, again = false, timer = null;
  function scheduleRefresh(delay) {
    if (timer) return;
    timer = setTimeout(function () { timer = null; refresh(); }, delay);
  }
  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(location.href, { credentials: "same-origin", headers: { "X-Backwatch-Live": "1" } })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var page = new DOMParser().parseFromString(html, "text/html"), changed = [];
        page.querySelectorAll("[data-live-id]").forEach(function (el) {
          var id = el.getAttribute("data-live-id");
          var old = doc.querySelector('[data-live-id="' + id + '"]');
          if (!old || signature(old) === signature(el)) return;
          var fresh = swap(old, el);
          if (!fresh) return;
          localizeTimes(fresh);
          drawSparks(fresh);
          changed.push(id);
        });
        doc.body.setAttribute("data-refreshed", String(Number(doc.body.getAttribute("data-refreshed") || 0) + 1));
        if (changed.length) doc.dispatchEvent(new CustomEvent("bw:updated", { detail: { changed: changed } }));
      })
      .catch(function () { /* next change or tick tries again */ })
      .then(function () {
        refreshing = false;
        if (again) { again = false; scheduleRefresh(300); }
      });
  }
  function setLive(state, text) {
    var el = doc.getElementById("live-status");
    if (!el) return;
    el.hidden = false;
    el.className = "live " + state;
    el.textContent = text;
  }
  function connect() {
    if (!window.EventSource || !doc.body.hasAttribute("data-live")) return;
    var source = new EventSource("/api/v1/stream");
    var wasDown = false;
    source.addEventListener("hello", function () {
      setLive("on", "live");
      doc.body.setAttribute("data-stream", "open");
      if (wasDown) scheduleRefresh(100);
      wasDown = false;
    });
    source.addEventListener("change", function () { scheduleRefresh(250); });
    source.onerror = function () {
      wasDown = true;
      setLive("off", "reconnecting…");
      doc.body.setAttribute("data-stream", "down");
    };
    // health moves with the clock too (late, missed): look again now and then
    setInterval(function () { if (!doc.hidden) scheduleRefresh(0); }, 60000);
    setInterval(function () { localizeTimes(doc); }, 30000);
  }

  function enhance(root) {
    localizeTimes(root);
    drawSparks(root);
    filterLog();
  }

  doc.addEventListener("DOMContentLoaded", function () {
    syncToggle();
    enhance(doc);
    showLogError();
    // after a form action: say what it did, and start from there
    var flash = doc.getElementById("flash");
    if (flash) flash.focus();
    doc.addEventListener("submit", function (e) {
      var ask = e.target.getAttribute && e.target.getAttribute("data-confirm");
      if (ask && !window.confirm(ask)) e.preventDefault();
    });
    var toggle = doc.getElementById("theme-toggle");
    if (toggle) toggle.addEventListener("click", toggleTheme);
    doc.addEventListener("click", function (e) {
      var btn = e.target.closest && e.target.closest("button[data-copy]");
      if (btn) copy(btn);
    });
    var logInput = doc.getElementById("log-filter");
    if (logInput) logInput.addEventListener("input", filterLog);
    // a filter chosen with a mouse or a finger applies at once; from the keyboard each arrow
    // key changes the value, so it waits for the Filter button (WCAG 3.2.2, issue 19)
    doc.querySelectorAll("form.filters select").forEach(function (sel) {
      var pointer = false;
      sel.addEventListener("pointerdown", function () { pointer = true; });
      sel.addEventListener("keydown", function () { pointer = false; });
      sel.addEventListener("change", function () { if (pointer) sel.form.submit(); });
    });
    connect();
  });
  window.backwatch = { refresh: refresh, relative: relative, stamp: stamp };
})();
