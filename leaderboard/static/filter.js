// Table filters for the XPrune Bench leaderboard. A <form class="filters" data-table="ID"> holds one
// <select name="AXIS"> per axis; rows of table ID carry data-AXIS attributes and are hidden unless every
// chosen value matches. The choice is kept in the address (#dataset=bloodmnist&scope=layer), so a
// filtered view can be linked; an address without "=" (a plain anchor) is left alone.
"use strict";
(function () {
  function fromHash() {
    var out = {}, hash = window.location.hash.replace(/^#/, "");
    if (hash.indexOf("=") < 0) { return out; }
    hash.split("&").forEach(function (pair) {
      var i = pair.indexOf("=");
      if (i > 0) { out[decodeURIComponent(pair.slice(0, i))] = decodeURIComponent(pair.slice(i + 1)); }
    });
    return out;
  }

  function toHash(wanted) {
    return Object.keys(wanted).map(function (k) {
      return encodeURIComponent(k) + "=" + encodeURIComponent(wanted[k]);
    }).join("&");
  }

  function apply(form, table) {
    var wanted = {}, shown = 0, rows = table.tBodies[0].rows;
    form.querySelectorAll("select").forEach(function (s) { if (s.value) { wanted[s.name] = s.value; } });
    Array.prototype.forEach.call(rows, function (row) {
      var ok = Object.keys(wanted).every(function (k) { return row.getAttribute("data-" + k) === wanted[k]; });
      row.hidden = !ok;
      if (ok) { shown += 1; }
    });
    form.querySelector("output").textContent = "showing " + shown + " of " + rows.length + " rows";
    return wanted;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var initial = fromHash();
    document.querySelectorAll("form.filters").forEach(function (form) {
      var table = document.getElementById(form.getAttribute("data-table"));
      if (!table) { return; }
      form.hidden = false;
      form.querySelectorAll("select").forEach(function (s) {
        var value = initial[s.name];
        if (value && Array.prototype.some.call(s.options, function (o) { return o.value === value; })) {
          s.value = value;
        }
      });
      form.addEventListener("submit", function (e) { e.preventDefault(); });
      form.addEventListener("change", function () {
        var hash = toHash(apply(form, table));
        try {
          window.history.replaceState(null, "", hash ? "#" + hash : window.location.pathname);
        } catch (err) { /* some file:// contexts refuse; the filter still applies */ }
      });
      apply(form, table);
    });
  });
}());
