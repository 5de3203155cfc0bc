/* Runs in <head> before the first paint: apply the remembered theme (dark by default). */
(function () {
  try {
    var theme = localStorage.getItem("bw-theme");
    if (theme === "light" || theme === "dark") document.documentElement.setAttribute("data-theme", theme);
  } catch (e) { /* storage blocked: keep the default */ }
})();
