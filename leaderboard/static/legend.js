// Plot legends for the XPrune Bench leaderboard: each button highlights one method (every element
// with the same data-series, in all plots of its section: colour, band and whiskers) or turns it
// back to grey; "highlight all" / "grey all" set every method. The page starts with the best
// method, random and magnitude highlighted (aria-pressed="true", class "hl" on their series).
"use strict";
(function () {
  function setShown(scope, name, on) {
    scope.querySelectorAll("[data-series]").forEach(function (el) {
      if (el.getAttribute("data-series") !== name) { return; }
      if (el.classList.contains("legend-item")) {
        el.setAttribute("aria-pressed", on ? "true" : "false");
      } else {
        el.classList.toggle("hl", on);
        el.classList.toggle("muted", !on);
        if (on && el.tagName.toLowerCase() === "g") { el.parentNode.appendChild(el); }  // on top
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll(".legend").forEach(function (legend) {
      var scope = legend.closest("section") || document;
      legend.addEventListener("click", function (e) {
        var button = e.target.closest("button");
        if (!button) { return; }
        if (button.classList.contains("legend-item")) {
          setShown(scope, button.getAttribute("data-series"), button.getAttribute("aria-pressed") !== "true");
        } else {
          var on = button.getAttribute("data-show") === "all";
          legend.querySelectorAll(".legend-item").forEach(function (item) {
            setShown(scope, item.getAttribute("data-series"), on);
          });
        }
      });
    });
  });
}());
