// dnsrecall web UI: small enhancements over pages that work without it.
// Everything is delegated from `document`, so it survives htmx swaps.
(function () {
  "use strict";

  function rows() { return Array.from(document.querySelectorAll("#results tbody tr")); }
  function selected() { return document.querySelector("#results tbody tr.selected"); }
  function select(row) {
    var old = selected();
    if (old) old.classList.remove("selected");
    if (!row) return;
    row.classList.add("selected");
    row.setAttribute("tabindex", "-1");
    row.focus({ preventScroll: true });
    row.scrollIntoView({ block: "nearest" });
    highlight(row.id.slice(1));
  }
  function highlight(index) {
    document.querySelectorAll("svg.timeline .bar.hover").forEach(function (b) { b.classList.remove("hover"); });
    if (index === null) return;
    document.querySelectorAll('svg.timeline .bar[data-row="' + index + '"]').forEach(function (b) { b.classList.add("hover"); });
  }
  function go(url) {
    window.location.assign(url);
  }
  function follow(link) { if (link) link.click(); }

  // A view of more rows than the default page is streamed by the server:
  // let the browser load it (painting rows as they arrive) rather than
  // htmx, which waits for the whole answer before it swaps it in. These
  // listeners run in the capture phase, before htmx's on the element.
  var STREAM_ABOVE = 1000;
  function streams(limit) { return Number(limit) > STREAM_ABOVE; }
  document.addEventListener("click", function (event) {
    var link = event.target instanceof Element && event.target.closest("a[href]");
    if (!link) return;
    var url;
    try { url = new URL(link.href, window.location.href); } catch (e) { return; }
    if (url.origin === window.location.origin && streams(url.searchParams.get("limit"))) event.stopPropagation();
  }, true);
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!(form instanceof HTMLFormElement) || form.method.toLowerCase() !== "get") return;
    if (streams(new FormData(form).get("limit"))) event.stopPropagation();
  }, true);

  // Theme: a cookie (not HttpOnly: only a preference) the server reads too.
  function toggleTheme() {
    var root = document.documentElement;
    var current = root.getAttribute("data-theme");
    if (!current) current = window.matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
    var next = current === "dark" ? "light" : "dark";
    root.setAttribute("data-theme", next);
    document.cookie = "theme=" + next + "; Path=/; Max-Age=31536000; SameSite=Strict";
  }
  function toggleHelp(show) {
    var help = document.getElementById("help");
    if (!help) return;
    help.hidden = show === undefined ? !help.hidden : !show;
  }

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (!(target instanceof Element)) return;
    if (target.closest("#theme-toggle")) { toggleTheme(); return; }
    if (target.closest("#help-toggle")) { toggleHelp(); return; }
    var row = target.closest("#results tbody tr");
    if (row && !target.closest("a")) select(row);
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    var typing = target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|SELECT|TEXTAREA)$/.test(target.tagName));
    if (event.key === "Escape") {
      toggleHelp(false);
      if (typing) target.blur();
      return;
    }
    if (typing) return;
    var all = rows();
    var current = selected();
    var index = current ? all.indexOf(current) : -1;
    switch (event.key) {
      case "/": event.preventDefault(); var q = document.getElementById("q"); if (q) { q.focus(); q.select(); } break;
      case "j": event.preventDefault(); select(all[Math.min(index + 1, all.length - 1)]); break;
      case "k": event.preventDefault(); select(all[Math.max(index - 1, 0)]); break;
      case "p": case "Enter":
        if (current && document.activeElement && document.activeElement.tagName === "A" && event.key === "Enter") return;
        if (current) { event.preventDefault(); follow(current.querySelector("a.rdata-link") || current.querySelector("a.rrname")); }
        break;
      case "n": if (current) { event.preventDefault(); follow(current.querySelector("a.rrname")); } break;
      case "e": var csv = document.getElementById("export-csv"); if (csv) { event.preventDefault(); csv.click(); } break;
      case "t": event.preventDefault(); toggleTheme(); break;
      case "?": event.preventDefault(); toggleHelp(); break;
    }
  });

  // Timeline: hovering a bar highlights its row; dragging sets the fence.
  document.addEventListener("mouseover", function (event) {
    var bar = event.target instanceof Element && event.target.closest("svg.timeline .bar");
    var old = document.querySelectorAll("#results tr.hover-row");
    old.forEach(function (r) { r.classList.remove("hover-row", "selected"); });
    if (bar) { var row = document.getElementById("r" + bar.getAttribute("data-row")); if (row) row.classList.add("hover-row", "selected"); }
  });

  var drag = null;
  function svgX(svg, clientX) {
    var box = svg.getBoundingClientRect();
    var width = parseFloat(svg.dataset.width);
    return Math.max(0, Math.min(width, (clientX - box.left) / box.width * width));
  }
  function timeAt(svg, x) {
    var left = parseFloat(svg.dataset.left), right = parseFloat(svg.dataset.right);
    var t0 = parseInt(svg.dataset.t0, 10), t1 = parseInt(svg.dataset.t1, 10);
    var f = Math.max(0, Math.min(1, (x - left) / (right - left)));
    return Math.round(t0 + f * (t1 - t0));
  }
  document.addEventListener("mousedown", function (event) {
    var svg = event.target instanceof Element && event.target.closest("svg.timeline");
    if (!svg || event.button !== 0) return;
    event.preventDefault();
    drag = { svg: svg, x0: svgX(svg, event.clientX), brush: svg.querySelector(".brush") };
    drag.brush.setAttribute("x", drag.x0);
    drag.brush.setAttribute("width", 0);
  });
  document.addEventListener("mousemove", function (event) {
    if (!drag) return;
    var x = svgX(drag.svg, event.clientX);
    drag.brush.setAttribute("x", Math.min(x, drag.x0));
    drag.brush.setAttribute("width", Math.abs(x - drag.x0));
  });
  document.addEventListener("mouseup", function (event) {
    if (!drag) return;
    var d = drag; drag = null;
    var x = svgX(d.svg, event.clientX);
    if (Math.abs(x - d.x0) < 3) { d.brush.setAttribute("width", 0); return; }
    var after = timeAt(d.svg, Math.min(x, d.x0)), before = timeAt(d.svg, Math.max(x, d.x0));
    var url = d.svg.dataset.base + "&after=" + after + "&before=" + before;
    go(url);
  });
})();
