/* Runs in <head> before the first paint: the theme chosen with the toggle, else the
   system's (prefers-color-scheme), else dark. Without a choice it follows the system. */
(function () {
  var root = document.documentElement, query = window.matchMedia && window.matchMedia("(prefers-color-scheme: light)");
  function chosen() {
    try { return localStorage.getItem("bw-theme"); } catch (e) { return null; } /* storage blocked */
  }
  function apply() {
    var theme = chosen();
    if (theme !== "light" && theme !== "dark") theme = query && query.matches ? "light" : "dark";
    root.setAttribute("data-theme", theme);
  }
  apply();
  if (query && query.addEventListener) {
    query.addEventListener("change", function () {
      if (chosen() !== "light" && chosen() !== "dark") {
        apply();
        document.dispatchEvent(new CustomEvent("bw:theme", { detail: root.getAttribute("data-theme") }));
      }
    });
  }
})();
