// healthsec console: keyboard shortcuts only (no inline script anywhere; CSP default-src 'self').
// "/" focuses the page's search or filter box; "j"/"k" move through the rows of a list marked data-rows;
// Enter opens the focused row's link; "g" then "o", "i" or "a" goes to the overview, incidents or alerts.
(function () {
  "use strict";
  var pendingG = false;
  function typing(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
  }
  function rows() {
    var list = document.querySelector("[data-rows]");
    return list ? Array.prototype.slice.call(list.querySelectorAll("tr[data-href], li[data-href]")) : [];
  }
  function move(step) {
    var all = rows();
    if (!all.length) { return; }
    var at = all.indexOf(document.activeElement);
    var next = all[Math.max(0, Math.min(all.length - 1, at + step))];
    next.focus();
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) { return; }
    if (pendingG) {
      pendingG = false;
      var to = { o: "/", i: "/incidents", a: "/alerts" }[ev.key];
      if (to) { window.location.assign(to); ev.preventDefault(); }
      return;
    }
    if (ev.key === "g") { pendingG = true; return; }
    if (ev.key === "/") {
      var box = document.querySelector("[data-search]");
      if (box) { box.focus(); ev.preventDefault(); }
    } else if (ev.key === "j") { move(1); ev.preventDefault(); }
    else if (ev.key === "k") { move(-1); ev.preventDefault(); }
    else if (ev.key === "Enter" && document.activeElement && document.activeElement.dataset.href) {
      window.location.assign(document.activeElement.dataset.href);
    }
  });
  document.addEventListener("click", function (ev) {
    var row = ev.target.closest ? ev.target.closest("tr[data-href]") : null;
    if (row && !ev.target.closest("a, button, input, label, select")) { window.location.assign(row.dataset.href); }
  });
})();
